"""The trainers a user would pick instead of kit, one module each, run as scripts on the GPU machine:

    python bench/peers/trl_peft.py MODEL     # transformers + peft + trl SFTTrainer at its best documented settings
    python bench/peers/unsloth_trl.py MODEL  # unsloth's FastLanguageModel + its patched SFTTrainer, at its defaults
    python bench/peers/seeds_recipe.py MODEL # the reference competition's seed notebook (a recipe, not a trainer)

harness.py holds what they share (trl's loop timed as kit's is, the packed collator for flash varlen attention).
Each writes to $OUT/train_speed.json beside kit's records (bench/train_speed.py), so `python bench/train_speed.py
table` puts them side by side. The protocol they follow is at the top of bench/RESULTS.md.
"""
