"""Training READ/WRITE translators: SimulMask SFT (and its prefix-prompt baseline).

torch, transformers, peft and accelerate (the ``[torch]`` extra) are imported only by the
modules that train or export; building examples and schedules needs none of them.
"""
