"""Process setup: the device, graph mode and seed, and the data-parallel context under msrun or a rank table."""
import os

import mindspore as ms


def init_runtime(device_target="auto", device_id=None, seed=0):
    """Selects the device (``auto``: the one the installed MindSpore package targets), graph mode and the seed.

    A process that has already run MindSpore kernels keeps its device (MindSpore refuses to select one then), so
    loading a second model or exporting after training in the same process works.
    """
    if device_target in (None, "", "auto"):
        device_target = ms.get_context("device_target")  # the device this MindSpore package was built for
    elif device_target != "CPU" and not _device_available(device_target):
        raise ValueError(f"device target {device_target} is not available: this MindSpore installation or machine "
                         f"has no {device_target} support")
    try:
        if device_id is None:
            ms.set_device(device_target)  # under msrun the device id is negotiated per process
        else:
            ms.set_device(device_target, device_id)
    except RuntimeError as err:
        current = ms.get_context("device_target")
        if ("initialized" not in str(err) and "can not be modified" not in str(err)) or current != device_target:
            raise RuntimeError(f"this process already runs MindSpore on {current}; {device_target} cannot be "
                               f"selected any more") from err
    ms.set_context(mode=ms.GRAPH_MODE)
    ms.set_seed(seed)
    return device_target


def _device_available(device_target):
    try:
        return ms.hal.is_available(device_target)
    except (RuntimeError, ValueError):
        return False


def distributed_context():
    """``(rank, world_size)``; initialises data parallelism when launched by msrun or an HCCL rank table."""
    launched = os.environ.get("MS_ROLE") == "MS_WORKER" or int(os.environ.get("RANK_SIZE", "1")) > 1
    if not launched:
        return 0, 1
    from mindspore.communication import get_group_size, get_rank, init
    init()
    rank, world_size = get_rank(), get_group_size()
    ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True,
                                 device_num=world_size)
    return rank, world_size
