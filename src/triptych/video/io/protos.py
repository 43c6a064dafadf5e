"""TensorFlow's example.proto messages as `protobuf` classes, without TensorFlow.

Used as the reference that the hand-written parser in `example.py` is tested
against and as a peer in benchmarks/video_read.py; triptych's reading path
does not need protobuf. The descriptors are built in code from the field
numbers of tensorflow/core/example/{feature,example}.proto, so no generated
`_pb2` module or `protoc` is involved.
"""

from __future__ import annotations

import functools


@functools.lru_cache(maxsize=None)
def messages() -> dict:
    """{"Example": cls, "SequenceExample": cls, "Feature": cls, ...}."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    F = descriptor_pb2.FieldDescriptorProto
    fd = descriptor_pb2.FileDescriptorProto(name="triptych_tf_example.proto", package="tensorflow", syntax="proto3")

    def msg(name, fields, nested=()):
        m = fd.message_type.add(name=name)
        for number, fname, ftype, label, type_name in fields:
            f = m.field.add(name=fname, number=number, type=ftype, label=label)
            if type_name:
                f.type_name = type_name
        for entry in nested:
            m.nested_type.append(entry)
        return m

    def map_entry(name, value_type):
        e = descriptor_pb2.DescriptorProto(name=name)
        e.field.add(name="key", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
        e.field.add(name="value", number=2, type=F.TYPE_MESSAGE, label=F.LABEL_OPTIONAL, type_name=value_type)
        e.options.map_entry = True
        return e

    REP, OPT = F.LABEL_REPEATED, F.LABEL_OPTIONAL
    msg("BytesList", [(1, "value", F.TYPE_BYTES, REP, None)])
    msg("FloatList", [(1, "value", F.TYPE_FLOAT, REP, None)])
    msg("Int64List", [(1, "value", F.TYPE_INT64, REP, None)])
    feat = msg(
        "Feature",
        [
            (1, "bytes_list", F.TYPE_MESSAGE, OPT, ".tensorflow.BytesList"),
            (2, "float_list", F.TYPE_MESSAGE, OPT, ".tensorflow.FloatList"),
            (3, "int64_list", F.TYPE_MESSAGE, OPT, ".tensorflow.Int64List"),
        ],
    )
    feat.oneof_decl.add(name="kind")
    for f in feat.field:
        f.oneof_index = 0
    msg("Features", [(1, "feature", F.TYPE_MESSAGE, REP, ".tensorflow.Features.FeatureEntry")],
        [map_entry("FeatureEntry", ".tensorflow.Feature")])
    msg("FeatureList", [(1, "feature", F.TYPE_MESSAGE, REP, ".tensorflow.Feature")])
    msg("FeatureLists", [(1, "feature_list", F.TYPE_MESSAGE, REP, ".tensorflow.FeatureLists.FeatureListEntry")],
        [map_entry("FeatureListEntry", ".tensorflow.FeatureList")])
    msg("Example", [(1, "features", F.TYPE_MESSAGE, OPT, ".tensorflow.Features")])
    msg(
        "SequenceExample",
        [
            (1, "context", F.TYPE_MESSAGE, OPT, ".tensorflow.Features"),
            (2, "feature_lists", F.TYPE_MESSAGE, OPT, ".tensorflow.FeatureLists"),
        ],
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    names = ["BytesList", "FloatList", "Int64List", "Feature", "Features", "FeatureList", "FeatureLists",
             "Example", "SequenceExample"]
    return {n: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"tensorflow.{n}")) for n in names}


def feature_value(f) -> tuple:
    """A protobuf Feature as (kind, values), in example.py's representation."""
    import numpy as np

    which = f.WhichOneof("kind")
    if which == "bytes_list":
        return "bytes", list(f.bytes_list.value)
    if which == "float_list":
        return "float", np.array(f.float_list.value, dtype=np.float32)
    if which == "int64_list":
        return "int64", np.array(f.int64_list.value, dtype=np.int64)
    return None, []
