"""Optional GPU stage: grounding scores of region crops against their context, and replay features.

`transforms.ScoreRegions` is the stage; `spec` (settings, model geometry), `prepare` (CPU tensors),
`batch` (merge/split a RunInference batch), `scores` (attach, summarise, threshold) import no torch;
`model` (the CLIP model on its device) is imported only where a model is loaded.
"""
