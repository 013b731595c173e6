"""The training sampler: N processes see exactly the global batches of one process with N x the batch size."""
import numpy as np

from src.dataset import create_train_dataset, epoch_batch_indices, eval_batches, steps_per_epoch


def test_ranks_partition_the_single_process_global_batches():
    total, batch, world = 103, 4, 2
    single = epoch_batch_indices(total, batch * world, epoch=3, seed=7)
    ranks = [epoch_batch_indices(total, batch, epoch=3, seed=7, rank=r, world_size=world) for r in range(world)]
    assert len(single) == steps_per_epoch(total, batch, world) == 12
    for step, global_batch in enumerate(single):
        np.testing.assert_array_equal(np.concatenate([ranks[r][step] for r in range(world)]), global_batch)


def test_epochs_are_different_permutations_and_reproducible():
    first = np.concatenate(epoch_batch_indices(40, 8, epoch=0, seed=1))
    second = np.concatenate(epoch_batch_indices(40, 8, epoch=1, seed=1))
    assert sorted(first) == list(range(40)) and not np.array_equal(first, second)
    np.testing.assert_array_equal(first, np.concatenate(epoch_batch_indices(40, 8, epoch=0, seed=1)))
    np.testing.assert_array_equal(np.concatenate(epoch_batch_indices(40, 8, 0, shuffle=False)), np.arange(40))


def test_dataset_skips_done_batches_for_resume():
    columns = {"x": np.arange(30).reshape(15, 2).astype(np.int32), "y": np.arange(15).astype(np.int32)}
    full = [b[1].asnumpy() for b in create_train_dataset(columns, ("x", "y"), 3, epoch=2, seed=5)
            .create_tuple_iterator(num_epochs=1)]
    resumed = [b[1].asnumpy() for b in create_train_dataset(columns, ("x", "y"), 3, epoch=2, seed=5, skip_batches=2)
               .create_tuple_iterator(num_epochs=1)]
    assert len(full) == 5
    np.testing.assert_array_equal(np.stack(full[2:]), np.stack(resumed))


def test_eval_batches_pad_the_last_batch_and_report_real_rows():
    columns = {"x": np.arange(7)}
    batches = list(eval_batches(columns, ("x",), 3))
    assert [rows for rows, _ in batches] == [3, 3, 1]
    assert all(batch[0].shape == (3,) for _, batch in batches)
    np.testing.assert_array_equal(np.concatenate([b[0][:rows] for rows, b in batches]), np.arange(7))
