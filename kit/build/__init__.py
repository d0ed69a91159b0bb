"""Building a kernel: a template from kernels/ and a typed run config become one self-contained script and its
kernel-metadata.json; `kit build --explain` shows the plan that config would get on a named machine."""
