"""ERNIE 1.0 fine-tuning and evaluation: drcd, cmrc (span extraction).

Example: python run_ernie_mrc.py --help
"""
from src.finetune import main

if __name__ == "__main__":
    main("mrc")
