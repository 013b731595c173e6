"""ERNIE 1.0 for MindSpore.

MindSpore's own C++ log (GLOG) prints WARNING lines about its graph passes on every run; the toolkit's console shows
its own messages and MindSpore's errors only. Set ``GLOG_v`` (0 debug .. 3 error) before starting to see more.
"""
import os

os.environ.setdefault("GLOG_v", "3")  # must be set before mindspore is first imported
