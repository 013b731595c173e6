"""ERNIE 1.0 pre-training (knowledge-masked LM + next sentence prediction); see src/pretrain.py.

Example: python run_ernie_pretrain.py --help
"""
from src.pretrain import main

if __name__ == "__main__":
    main()
