"""TFRecord writer and reader (src/data/tfrecord.py) against independent definitions: the RFC 3720 CRC32C test
vectors and a bit-by-bit CRC, protobuf's own parser (``tf.train.Example`` declared here from its .proto definition),
MindSpore's ``TFRecordDataset``, and the MindRecord round trip of the same columns."""
import json
import os

import numpy as np
import pytest

from src.data.tfrecord import (crc32c, crc32c_many, check_tfrecord_file, example_feature_names, mask_crc,
                               read_tfrecord_columns, tfrecord_schema, write_tfrecord, write_tfrecord_schema)
from src.data.classification import convert_classification_examples, read_classification_file
from src.data.mindrecord import read_mindrecord_columns, write_mindrecord
from src.data.ner import convert_ner_examples, read_ner_file
from src.data.pretraining import (COLUMNS as PRETRAINING_COLUMNS, load_pretraining_data,
                                  read_pretraining_mindrecord, write_pretraining_mindrecord)
from src.tasks.registry import TASKS
from src.tokenizer import ErnieTokenizer

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")


def _bitwise_crc32c(data):
    """CRC32C one bit at a time, straight from the definition (reflected polynomial 0x82F63B78)."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


# RFC 3720 (iSCSI), appendix B.4, plus the common check value of "123456789"
@pytest.mark.parametrize("data,expected", [
    (bytes(32), 0x8A9136AA),
    (b"\xff" * 32, 0x62A8AB43),
    (bytes(range(32)), 0x46DD794E),
    (bytes(range(31, -1, -1)), 0x113FDB5C),
    (b"123456789", 0xE3069283),
    (b"", 0x0),
])
def test_crc32c_rfc3720_vectors(data, expected):
    assert crc32c(data) == expected


def test_crc32c_many_equals_bitwise_definition_for_mixed_lengths():
    rng = np.random.default_rng(0)
    payloads = [rng.integers(0, 256, int(n), dtype=np.uint8).tobytes() for n in rng.integers(0, 300, 40)]
    payloads += [b"", b"\x00"]
    assert crc32c_many(payloads) == [_bitwise_crc32c(p) for p in payloads]


def test_crc32c_many_in_small_chunks(monkeypatch):
    """One long payload among short ones: chunks are bounded in bytes, and every CRC stays right."""
    import src.data.tfrecord as tfrecord

    monkeypatch.setattr(tfrecord, "_CRC_CHUNK_BYTES", 1000)
    rng = np.random.default_rng(1)
    payloads = [rng.integers(0, 256, int(n), dtype=np.uint8).tobytes() for n in rng.integers(0, 900, 30)]
    payloads.append(rng.integers(0, 256, 5000, dtype=np.uint8).tobytes())
    assert crc32c_many(payloads) == [_bitwise_crc32c(p) for p in payloads]


def test_mask_crc_definition():
    for crc in (0, 1, 0x12345678, 0xFFFFFFFF):
        rotated = ((crc >> 15) | (crc << 17)) & 0xFFFFFFFF
        assert mask_crc(crc) == (rotated + 0xA282EAD8) % 2 ** 32


# ---------------------------------------------------------------------------------------------------------------
# Columns as the toolkit's converters make them

@pytest.fixture(scope="module")
def tokenizer():
    return ErnieTokenizer(os.path.join(FIXTURES, "tiny_vocab.txt"))


@pytest.fixture(scope="module")
def classification_columns(tokenizer):
    label_map = TASKS["dbqa"].label_map
    examples = read_classification_file(os.path.join(FIXTURES, "dbqa.tsv"), label_map)
    return convert_classification_examples(examples, tokenizer, 24, label_map)


@pytest.fixture(scope="module")
def ner_columns(tokenizer):
    label_map = TASKS["msra_ner"].label_map
    examples = read_ner_file(os.path.join(FIXTURES, "msra_ner_ernie.tsv"), label_map)
    columns, _ = convert_ner_examples(examples, tokenizer, 16, label_map)
    columns["label_ids"][1] = -1  # an unlabeled row: -1 is a 10-byte varint in protobuf's int64 encoding
    return columns


@pytest.fixture(scope="module")
def pretraining_columns(tokenizer, tmp_path_factory):
    """ERNIE-format samples (token ids;segment ids;positions;seg labels;next sentence label) masked by the reader."""
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    rng = np.random.default_rng(1)
    lines = []
    for _ in range(6):
        a, b = rng.integers(5, 100, int(rng.integers(3, 8))).tolist(), rng.integers(5, 100, 4).tolist()
        ids = [cls_id] + a + [sep_id] + b + [sep_id]
        types = [0] * (len(a) + 2) + [1] * (len(b) + 1)
        seg = [-1] + [0] * len(a) + [-1] + [0] * len(b) + [-1]
        fields = [ids, types, list(range(len(ids))), seg]
        lines.append(";".join(" ".join(map(str, f)) for f in fields) + f";{int(rng.integers(0, 2))}")
    path = tmp_path_factory.mktemp("pretrain") / "samples.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    columns, _ = load_pretraining_data([str(path)], "ernie", tokenizer, max_seq_len=20)
    assert columns["masked_lm_weights"].dtype == np.float32 and columns["input_ids"].dtype == np.int32
    return columns


@pytest.fixture(params=["classification", "ner", "pretraining"])
def columns(request):
    return request.getfixturevalue(f"{request.param}_columns")


def assert_same_columns(got, expected):
    assert sorted(got) == sorted(expected)
    for name in expected:
        assert got[name].dtype == expected[name].dtype, name
        assert got[name].shape == expected[name].shape, name
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)


# ---------------------------------------------------------------------------------------------------------------
# The Example encoding, parsed by protobuf itself

def _example_class():
    """``tf.train.Example`` declared from tensorflow/core/example/{example,feature}.proto, for protobuf's parser."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    field = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(name="tfrecord_test_example.proto", package="tfrecord_test",
                                               syntax="proto3")

    def message(name, *fields):
        msg = proto.message_type.add(name=name)
        for number, (field_name, kind, type_name) in enumerate(fields, start=1):
            msg.field.add(name=field_name, number=number, type=kind, type_name=type_name or "",
                          label=field.LABEL_REPEATED if name.endswith("List") else field.LABEL_OPTIONAL)
        return msg

    message("BytesList", ("value", field.TYPE_BYTES, None))
    message("FloatList", ("value", field.TYPE_FLOAT, None))
    message("Int64List", ("value", field.TYPE_INT64, None))
    feature = message("Feature", ("bytes_list", field.TYPE_MESSAGE, ".tfrecord_test.BytesList"),
                      ("float_list", field.TYPE_MESSAGE, ".tfrecord_test.FloatList"),
                      ("int64_list", field.TYPE_MESSAGE, ".tfrecord_test.Int64List"))
    feature.oneof_decl.add(name="kind")
    for f in feature.field:
        f.oneof_index = 0
    features = proto.message_type.add(name="Features")
    entry = features.nested_type.add(name="FeatureEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=field.TYPE_STRING, label=field.LABEL_OPTIONAL)
    entry.field.add(name="value", number=2, type=field.TYPE_MESSAGE, type_name=".tfrecord_test.Feature",
                    label=field.LABEL_OPTIONAL)
    features.field.add(name="feature", number=1, type=field.TYPE_MESSAGE, label=field.LABEL_REPEATED,
                       type_name=".tfrecord_test.Features.FeatureEntry")
    message("Example", ("features", field.TYPE_MESSAGE, ".tfrecord_test.Features"))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tfrecord_test.Example"))


def _records(path):
    with open(path, "rb") as f:
        data = f.read()
    offset = 0
    while offset < len(data):
        length = int.from_bytes(data[offset:offset + 8], "little")
        yield data[offset + 12:offset + 12 + length]
        offset += 16 + length


def test_records_parse_with_protobuf_to_the_written_values(tmp_path, ner_columns, pretraining_columns):
    example_class = _example_class()
    for columns in (ner_columns, pretraining_columns):
        path = str(tmp_path / "data.tfrecord")
        assert write_tfrecord(columns, path) == len(columns["input_ids"])
        for row, payload in enumerate(_records(path)):
            example = example_class.FromString(payload)
            assert sorted(example.features.feature) == sorted(columns) == sorted(example_feature_names(payload))
            for name, column in columns.items():
                feature = example.features.feature[name]
                if column.dtype == np.float32:
                    assert feature.WhichOneof("kind") == "float_list"
                    assert list(feature.float_list.value) == np.atleast_1d(column[row]).tolist()
                else:
                    assert feature.WhichOneof("kind") == "int64_list"
                    assert list(feature.int64_list.value) == np.atleast_1d(column[row]).tolist()


def test_extreme_int64_values_encode_as_protobuf_varints(tmp_path):
    values = np.array([[0, 1, 127, 128, 16383, 16384, -1, -2 ** 63, 2 ** 63 - 1, 2 ** 35]], np.int64)
    path = str(tmp_path / "x.tfrecord")
    write_tfrecord({"v": values}, path)
    [payload] = list(_records(path))
    assert list(_example_class().FromString(payload).features.feature["v"].int64_list.value) == values[0].tolist()


# ---------------------------------------------------------------------------------------------------------------
# MindSpore's reader

def test_mindspore_reads_the_same_columns_with_and_without_schema(tmp_path, columns):
    path, schema = str(tmp_path / "train.tfrecord"), str(tmp_path / "schema.json")
    write_tfrecord(columns, path)
    write_tfrecord_schema(columns, schema)
    assert check_tfrecord_file(path)[0] == len(columns["input_ids"])
    assert_same_columns(read_tfrecord_columns(path), columns)
    assert_same_columns(read_tfrecord_columns(path, schema), columns)


def test_schema_is_the_model_zoo_layout(classification_columns, tmp_path):
    write_tfrecord_schema(classification_columns, str(tmp_path / "s.json"))
    with open(tmp_path / "s.json", encoding="utf-8") as f:
        schema = json.load(f)
    assert schema == tfrecord_schema(classification_columns)
    assert schema["datasetType"] == "TF" and schema["numRows"] == len(classification_columns["label_ids"]) == 5
    assert schema["columns"]["input_ids"] == {"type": "int64", "rank": 1, "shape": [24]}
    assert schema["columns"]["label_ids"] == {"type": "int64", "rank": 1, "shape": [1]}


def test_schema_selects_columns(tmp_path, classification_columns):
    path, schema = str(tmp_path / "d.tfrecord"), str(tmp_path / "s.json")
    write_tfrecord(classification_columns, path)
    subset = {name: classification_columns[name] for name in ("input_ids", "label_ids")}
    write_tfrecord_schema(subset, schema)
    assert_same_columns(read_tfrecord_columns(path, schema), subset)


def test_files_lists_and_directories_read_in_sorted_order(tmp_path, classification_columns):
    first = {name: column[:3] for name, column in classification_columns.items()}
    second = {name: column[3:] for name, column in classification_columns.items()}
    write_tfrecord(first, str(tmp_path / "part-0.tfrecord"))
    write_tfrecord(second, str(tmp_path / "part-1.tfrecord"))
    (tmp_path / "notes.txt").write_text("not a record file")
    assert_same_columns(read_tfrecord_columns(str(tmp_path)), classification_columns)
    reversed_list = [str(tmp_path / "part-1.tfrecord"), str(tmp_path / "part-0.tfrecord")]
    assert_same_columns(read_tfrecord_columns(reversed_list), classification_columns)


@pytest.mark.parametrize("name", ["classification", "ner"])
def test_same_columns_as_the_mindrecord_round_trip(tmp_path, request, name):
    columns = request.getfixturevalue(f"{name}_columns")
    write_mindrecord(columns, str(tmp_path / "d.mindrecord"))
    write_tfrecord(columns, str(tmp_path / "d.tfrecord"))
    assert_same_columns(read_tfrecord_columns(str(tmp_path / "d.tfrecord")),
                        read_mindrecord_columns(str(tmp_path / "d.mindrecord")))


def test_pretraining_columns_equal_the_pretraining_mindrecord_round_trip(tmp_path, pretraining_columns):
    write_pretraining_mindrecord(pretraining_columns, str(tmp_path / "p.mindrecord"))
    write_tfrecord(pretraining_columns, str(tmp_path / "p.tfrecord"))
    assert_same_columns(read_tfrecord_columns(str(tmp_path / "p.tfrecord")),
                        read_pretraining_mindrecord(str(tmp_path / "p.mindrecord")))


# ---------------------------------------------------------------------------------------------------------------
# Errors name the file

def test_every_corrupted_byte_is_detected(tmp_path, classification_columns):
    path = str(tmp_path / "d.tfrecord")
    write_tfrecord({name: column[:2] for name, column in classification_columns.items()}, path)
    with open(path, "rb") as f:
        original = f.read()
    for position in range(len(original)):
        damaged = bytearray(original)
        damaged[position] ^= 0x10
        with open(path, "wb") as f:
            f.write(damaged)
        with pytest.raises(ValueError, match=r"d\.tfrecord: record [01] at byte \d+: (corrupt|file ends)"):
            read_tfrecord_columns(path)


def test_truncated_file_is_named(tmp_path, classification_columns):
    path = str(tmp_path / "d.tfrecord")
    write_tfrecord(classification_columns, path)
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size - 3)
    with pytest.raises(ValueError, match="record 4 at byte .*file ends inside the record"):
        read_tfrecord_columns(path)


def test_missing_empty_and_not_example_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.tfrecord: file not found"):
        read_tfrecord_columns(str(tmp_path / "nope.tfrecord"))
    with pytest.raises(FileNotFoundError, match="no \\*.tfrecord file"):
        read_tfrecord_columns(str(tmp_path))
    (tmp_path / "empty.tfrecord").write_bytes(b"")
    with pytest.raises(ValueError, match="empty.tfrecord: empty file"):
        read_tfrecord_columns(str(tmp_path / "empty.tfrecord"))


def test_rows_of_different_lengths_are_named(tmp_path):
    write_tfrecord({"ids": np.zeros((3, 4), np.int32)}, str(tmp_path / "a.tfrecord"))
    write_tfrecord({"ids": np.ones((2, 6), np.int32)}, str(tmp_path / "b.tfrecord"))
    with pytest.raises(ValueError, match=r"a.tfrecord, .*b.tfrecord: column 'ids' has rows of different shapes "
                                         r"\[\(4,\), \(6,\)\]"):
        read_tfrecord_columns(str(tmp_path))


def test_schema_column_missing_from_the_records(tmp_path, classification_columns):
    path, schema = str(tmp_path / "d.tfrecord"), str(tmp_path / "s.json")
    write_tfrecord({name: classification_columns[name] for name in ("input_ids", "label_ids")}, path)
    write_tfrecord_schema(classification_columns, schema)
    with pytest.raises(ValueError, match=r"d\.tfrecord: lacks the columns \['input_mask', 'qids', 'segment_ids'\] "
                                         r"named in .*s\.json"):
        read_tfrecord_columns(path, schema)


def test_schema_that_would_drop_rows_or_disagrees_is_refused(tmp_path, classification_columns):
    path, schema_path = str(tmp_path / "d.tfrecord"), str(tmp_path / "s.json")
    write_tfrecord(classification_columns, path)
    schema = tfrecord_schema(classification_columns)
    schema["numRows"] = 2
    (tmp_path / "s.json").write_text(json.dumps(schema))
    with pytest.raises(ValueError, match="s.json: numRows is 2 but .* hold 5 records"):
        read_tfrecord_columns(path, schema_path)
    schema["numRows"] = 5
    schema["columns"]["input_ids"]["shape"] = [7]
    (tmp_path / "s.json").write_text(json.dumps(schema))
    with pytest.raises(ValueError, match="MindSpore cannot read the records with the schema .*s.json: .*shape"):
        read_tfrecord_columns(path, schema_path)
    schema["columns"]["input_ids"] = {"type": "string", "rank": 1, "shape": [24]}
    (tmp_path / "s.json").write_text(json.dumps(schema))
    with pytest.raises(ValueError, match="s.json: column 'input_ids': type must be"):
        read_tfrecord_columns(path, schema_path)


def test_bad_columns_are_refused_and_nothing_is_written(tmp_path):
    path = str(tmp_path / "d.tfrecord")
    with pytest.raises(ValueError, match="equal length"):
        write_tfrecord({"a": np.zeros((2, 3), np.int32), "b": np.zeros(3, np.int32)}, path)
    with pytest.raises(ValueError, match="column 'a': expected an integer or float32"):
        write_tfrecord({"a": np.zeros((2, 3), np.float64)}, path)
    assert os.listdir(tmp_path) == []


def test_pretraining_columns_cover_the_reader_schema(pretraining_columns):
    assert sorted(pretraining_columns) == sorted(PRETRAINING_COLUMNS)
