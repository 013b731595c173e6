"""ERNIE 1.0 fine-tuning and evaluation: msra_ner (softmax or CRF head).

Example: python run_ernie_ner.py --help
"""
from src.finetune import main

if __name__ == "__main__":
    main("ner")
