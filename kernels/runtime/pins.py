"""The one set of packages a kernel installs on Kaggle, pinned, and the image it was resolved and tested on.

Literals only: `kit deps push` reads this file (without importing it) to download the same wheels for internet-off
kernels, and the kernels install exactly these versions, everything else the image has held where it is.
How the set was found and is checked: bench/image_check.py (`resolve` and the table in bench/RESULTS.md).
"""

# Kaggle's GPU image these pins were resolved against: Kaggle/docker-python 78aaa43 on Colab's base
# release-colab-external-images_20260514-060047_RC00 (the versions in shared/reference/kaggle-image).
PINNED_IMAGE = {
    "image": "kaggle-gpu docker-python@78aaa43 colab@20260514-060047",
    "python": "3.12",
    "torch": "2.10.0",
    "transformers": "5.0.0",
}

# Per engine, every package that installing it adds to or upgrades in that image (exact versions). hf: 4-bit layers
# (peft and accelerate are in the image). unsloth: unsloth 2026.10.9 refuses transformers 5.0.0 and datasets 4.0.*
# and wants trl<=1.15.0; its transformers 5.17.0 needs the newer tokenizers and safetensors, datasets 4.8.5 the newer
# pyarrow. torch, torchvision and triton stay as the image has them (xformers 0.0.35 is built for torch 2.10).
PINNED_PACKAGES = {
    "hf": (
        "bitsandbytes==0.50.2",
    ),
    "unsloth": (
        "bitsandbytes==0.50.2",
        "unsloth==2026.10.9",
        "unsloth_zoo==2026.10.9",
        "transformers==5.17.0",
        "tokenizers==0.23.3",
        "safetensors==0.8.0",
        "trl==1.15.0",
        "datasets==4.8.5",
        "pyarrow==26.0.1",
        "torchao==0.18.0",
        "xformers==0.0.35",
        "cut_cross_entropy==25.1.1",
        "tyro==1.0.17",
        "msgspec==0.23.0",
        "hf_transfer==0.1.9",
        "json5==0.17.3",
        "structlog==26.1.0",
        "certifi==2026.10.19.post1",
    ),
}

# The manifest a wheel dataset from `kit deps push` carries: the image it was made for and its packages.
WHEELS_MANIFEST = "kit-wheels.json"
