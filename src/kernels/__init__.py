"""C++ CPU kernels (csrc/) as MindSpore custom operators."""
