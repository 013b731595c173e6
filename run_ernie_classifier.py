"""ERNIE 1.0 fine-tuning and evaluation: chnsenticorp, xnli, dbqa.

Example: python run_ernie_classifier.py --help
"""
from src.finetune import main

if __name__ == "__main__":
    main("classification")
