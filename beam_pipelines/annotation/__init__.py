"""Optional GPU stage: a vision-language annotation model's process-reward scores for PRM steps and verification
scores for VGR regions (`transforms.AnnotateSamples`), and their agreement with the data's labels.

`templates`, `spec`, `encode` (CPU inputs), `scores` and `agreement` import no torch; `model` (the model on its
device) is imported only where a model is loaded.
"""
