"""Training passes replayed as CUDA graphs, for models small enough that launching a step's kernels takes longer
than running them.

A step of SmolLM2-135M launches ~1,500 kernels for ~14 ms of GPU work and took ~160 ms on an H200 (bench/RESULTS.md,
issue 17): the host, not the GPU, set the pace. A CUDA graph records a pass's forward and backward once and replays
them with one launch. A graph holds fixed shapes, so a packed batch is padded to a bucket width (data.bucket_width:
eight widths an octave, 6% padding on average) by one extra row of pad tokens that attends only to itself and is
never predicted; a run records one graph per bucket it meets, all in one memory pool (one bucket runs at a time).

The recorded pass adds its gradients into each trainable parameter's .grad in place, so those tensors must live as
long as the graphs: the step zeroes them in place (optimizer.zero_grad(set_to_none=False)) instead of dropping them.
Where recording fails (a pass that syncs with the host, an op a graph cannot hold), training goes on eagerly and the
log says why, once.
"""

from __future__ import annotations

from runtime.data import Batch, bucket_pad_limit
from runtime.environment import log
from runtime.training import label_loss


class GraphedPasses:
    """The forward and backward pass of label_loss as CUDA graphs, one per (width, rows) of the packed batches seen."""

    def __init__(self, model, dtype, longest_row: int):
        import torch

        self.model, self.dtype, self.longest_row = model, dtype, longest_row
        self.trainable = [p for p in model.parameters() if p.requires_grad]
        self.graphs: dict[tuple[int, int], _Recorded] = {}
        self.pool = torch.cuda.graph_pool_handle()
        self.stream = torch.cuda.Stream()
        self.off = ""  # why recording failed; graphs are not used after that
        self.replays = self.eager = 0

    def takes(self, batch: Batch) -> bool:
        """Whether `batch` can run as a graph: packed, padded to its bucket, one target per row (completion-only)."""
        rows = batch.label_index.numel()
        bounds = batch.attention.get("cu_seq_lens_q")
        return (not self.off and batch.position_ids is not None and bounds is not None and batch.targets.numel() == rows
                and bounds.numel() == rows + 2)

    def backward(self, batch: Batch, weight: float):
        """Add `weight` x the gradient of the batch's loss into .grad; returns the weighted loss (a GPU tensor)."""
        key = (batch.input_ids.shape[1], batch.label_index.numel())
        recorded = (self.graphs.get(key) or self.record(key, batch)) if self.takes(batch) else None
        if recorded is None:  # the caller runs this pass eagerly
            self.eager += 1
            return None
        self.replays += 1
        return recorded.replay(batch, weight)

    def record(self, key: tuple[int, int], batch: Batch):
        """Record the graph for batches of this width and row count (warm-up passes first, off the graph)."""
        import torch

        width, _ = key
        max_length = max(self.longest_row, bucket_pad_limit(width))  # a bound on any row of the bucket, the pad row included
        try:
            recorded = _Recorded(self, batch, max_length)
        except Exception as error:  # noqa: BLE001 (whatever a capture refuses, the eager pass still runs)
            self.off = f"{type(error).__name__}: {str(error).splitlines()[0][:160]}"
            log(f"CUDA graphs off: recording a {width}-token pass failed ({self.off}); training eagerly")
            self.graphs.clear()  # their pool would sit beside the eager passes' memory
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
            return None
        self.graphs[key] = recorded
        return recorded

    def summary(self) -> str:
        """One log line: graphs recorded, passes replayed, and why graphs stopped if they did."""
        off = f"; off since: {self.off}" if self.off else ""
        return f"CUDA graphs: {len(self.graphs)} recorded (one per batch width), {self.replays} passes replayed, {self.eager} eager{off}"

    def counts(self) -> dict:
        """The figures of metrics.json: graphs recorded, passes replayed and run eagerly."""
        return {"cuda_graphs_recorded": len(self.graphs), "cuda_graph_replays": self.replays, "cuda_graph_eager_passes": self.eager}

    def close(self) -> None:
        """Free the graphs and their memory pool."""
        import torch

        self.graphs.clear()
        torch.cuda.synchronize()
        torch.cuda.empty_cache()


class _Recorded:
    """One recorded pass: static input tensors, the graph, and its weighted loss."""

    def __init__(self, owner: GraphedPasses, batch: Batch, max_length: int):
        import torch

        self.inputs = Batch(
            input_ids=batch.input_ids.clone(), position_ids=batch.position_ids.clone(), predict_index=batch.predict_index.clone(),
            targets=batch.targets.clone(), label_index=batch.label_index, useful_tokens=batch.useful_tokens,
            attention={"cu_seq_lens_q": batch.attention["cu_seq_lens_q"].clone(), "max_length_q": max_length},
        )
        self.weight = torch.zeros((), dtype=torch.float32, device=batch.input_ids.device)
        model, dtype = owner.model, owner.dtype

        def weighted_loss():
            # autocast's weight cache would keep casts made while recording: graphs need it off
            with torch.autocast("cuda", dtype=dtype, enabled=dtype != torch.float32, cache_enabled=False):
                return label_loss(model, self.inputs) * self.weight

        for p in owner.trainable:  # the graph adds into these tensors: they must exist before it is recorded
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        owner.stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(owner.stream):
            # lazy initialisation (and a compiled layer's code for the new width) happens here, outside the graph:
            # twice for the first graph, once after (a capture costs ~3 passes of the eager step; runs meet ~30 widths)
            for _ in range(1 if owner.graphs else 2):
                torch.autograd.grad(weighted_loss(), owner.trainable, allow_unused=True)
        torch.cuda.current_stream().wait_stream(owner.stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph, pool=owner.pool, stream=owner.stream):
            loss = weighted_loss()
            loss.backward()
            self.loss = loss.detach()

    def replay(self, batch: Batch, weight: float):
        """Run the recorded pass on `batch` (same shapes); returns its weighted loss, valid until the next replay."""
        inputs = self.inputs
        inputs.input_ids.copy_(batch.input_ids, non_blocking=True)
        inputs.position_ids.copy_(batch.position_ids, non_blocking=True)
        inputs.predict_index.copy_(batch.predict_index, non_blocking=True)
        inputs.targets.copy_(batch.targets, non_blocking=True)
        inputs.attention["cu_seq_lens_q"].copy_(batch.attention["cu_seq_lens_q"], non_blocking=True)
        self.weight.fill_(weight)
        self.graph.replay()
        return self.loss
