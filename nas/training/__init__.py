"""Training a design: the recipe (what is trained), the runtime (where), the batches, the loop,
its checkpoints and metrics, run folders and the model file they end with."""
