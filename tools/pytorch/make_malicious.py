#!/usr/bin/env python3
"""Writes inputs Ember's PyTorch reader must refuse, and a ZIP64 repack of a good fixture.
Standard library only: the pickles come from Python's pickle module (of objects whose
__reduce__ names a dangerous callable; pickling never calls it) or are assembled opcode by
opcode. Nothing here is ever unpickled.

    python3 tools/pytorch/make_malicious.py     (after tools/pytorch/make_fixtures.py)

Outputs under tests/fixtures/pytorch/:
  bad/*.bin            refused inputs; bad/manifest.json maps each to the error substring Ember
                       must report (the global's name or the rule) and what it tests
  good/basic_zip64.bin basic_zip.bin's entries rewritten as a ZIP64 archive (every 32-bit size
                       and offset saturated), with the same expected .json/.safetensors
If torch is importable, each pickle-level refusal is also checked against
torch.load(weights_only=True), which must refuse it too.
"""
import builtins
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GOOD = ROOT / "tests" / "fixtures" / "pytorch" / "good"
BAD = ROOT / "tests" / "fixtures" / "pytorch" / "bad"
PREFIX = "archive/"


# --- pickle opcodes -------------------------------------------------------------------------
def glob(module, name):
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def text(s):
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def integer(v):
    return b"J" + struct.pack("<i", v)


def tup(*items):
    return b"(" + b"".join(items) + b"t"


PROTO2, STOP, REDUCE, EMPTY_TUPLE, MARK, SETITEMS = b"\x80\x02", b".", b"R", b")", b"(", b"u"
ORDERED_DICT = glob("collections", "OrderedDict") + EMPTY_TUPLE + REDUCE


def storage_pid(key, numel, storage_type=("torch", "FloatStorage")):
    return tup(text("storage"), glob(*storage_type), text(key), text("cpu"), integer(numel)) + b"Q"


def tensor(pid, offset, size, stride):
    args = tup(pid, integer(offset), tup(*map(integer, size)), tup(*map(integer, stride)),
               b"\x89", ORDERED_DICT)
    return glob("torch._utils", "_rebuild_tensor_v2") + args + REDUCE


def state_dict(entries):
    """entries: [(name bytes-opcodes, value opcodes)]"""
    body = b"".join(text(k) + v for k, v in entries)
    return PROTO2 + ORDERED_DICT + MARK + body + SETITEMS + STOP


def one_tensor_pickle(key="0", numel=6, offset=0, size=(2, 3), stride=(3, 1)):
    return state_dict([("w", tensor(storage_pid(key, numel), offset, size, stride))])


class Reduce:
    """Pickles as a call of `func(*args)`; pickling does not call it."""

    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


# --- zip archives ---------------------------------------------------------------------------
def make_zip(entries, zip64=False, method=0):
    """Stored entries, data aligned to 64 bytes like torch's writer; zip64 saturates every
    32-bit size/offset field and writes the ZIP64 end records."""
    out, central = bytearray(), bytearray()
    for name, data in entries:
        nb = name.encode()
        payload = zlib.compress(data)[2:-4] if method == 8 else data
        crc = zlib.crc32(data)
        offset = len(out)
        pad = (-(offset + 30 + len(nb) + 4)) % 64
        local_extra = struct.pack("<HH", 0x4246, pad) + b"\0" * pad
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 45 if zip64 else 20, 0, method, 0, 0, crc,
                           len(payload), len(data), len(nb), len(local_extra)) + nb + local_extra
        out += payload
        if zip64:
            extra = struct.pack("<HHQQQ", 1, 24, len(data), len(payload), offset)
            sizes = (0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF)
        else:
            extra, sizes = b"", (len(payload), len(data), offset)
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45 if zip64 else 20,
                               45 if zip64 else 20, 0, method, 0, 0, crc, sizes[0], sizes[1],
                               len(nb), len(extra), 0, 0, 0, 0, sizes[2]) + nb + extra
    cd_offset = len(out)
    out += central
    n = len(entries)
    if zip64:
        z64 = len(out)
        out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, n, n, len(central),
                           cd_offset)
        out += struct.pack("<IIQI", 0x07064B50, 0, z64, 1)
        out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF,
                           0)
    else:
        out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, len(central), cd_offset, 0)
    return bytes(out)


def checkpoint(pickle_bytes, storages=None, extra=()):
    storages = {"0": struct.pack("<6f", *range(6))} if storages is None else storages
    entries = [(PREFIX + "data.pkl", pickle_bytes), (PREFIX + "byteorder", b"little")]
    entries += [(PREFIX + "data/" + k, v) for k, v in storages.items()]
    entries += list(extra)
    entries.append((PREFIX + "version", b"3\n"))
    return make_zip(entries)


def legacy(data_pickle, keys=(), storages=b"", little_endian=True):
    head = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2) + pickle.dumps(1001, protocol=2)
    head += pickle.dumps({"protocol_version": 1001, "little_endian": little_endian,
                          "type_sizes": {"short": 2, "int": 4, "long": 4}}, protocol=2)
    return head + data_pickle + pickle.dumps(list(keys), protocol=2) + storages


def patch_central(archive, entry_index, field_offset, fmt, value):
    """Overwrites one field of the entry_index-th central directory header."""
    b = bytearray(archive)
    at = b.index(struct.pack("<I", 0x02014B50))
    for _ in range(entry_index):
        n, m, k = struct.unpack_from("<HHH", b, at + 28)
        at += 46 + n + m + k
    struct.pack_into(fmt, b, at + field_offset, value)
    return bytes(b)


def main():
    if BAD.exists():
        shutil.rmtree(BAD)
    BAD.mkdir(parents=True)
    cases = {}

    def add(name, data, error, why, pickle_level=False):
        (BAD / name).write_bytes(data)
        cases[name] = {"error": error, "why": why, "pickle_level": pickle_level}

    good = one_tensor_pickle()
    # Dangerous callables, pickled by Python's own pickler (protocol 2: GLOBAL; 4: STACK_GLOBAL).
    # fix_imports=False keeps Python 3's module names (builtins, not __builtin__).
    add("os_system_global.bin",
        checkpoint(pickle.dumps(Reduce(os.system, ("echo pwned",)), 2, fix_imports=False)),
        "global 'posix.system' is not allowed", "GLOBAL + REDUCE of os.system", True)
    add("os_system_stack_global.bin",
        checkpoint(pickle.dumps(Reduce(os.system, ("echo pwned",)), 4)),
        "global 'posix.system' is not allowed", "STACK_GLOBAL + REDUCE of os.system", True)
    add("builtins_eval.bin",
        checkpoint(pickle.dumps(Reduce(builtins.eval, ("1+1",)), 2, fix_imports=False)),
        "global 'builtins.eval' is not allowed", "builtins.eval", True)
    add("builtins_eval_py2_name.bin", checkpoint(pickle.dumps(Reduce(builtins.eval, ("1",)), 2)),
        "global '__builtin__.eval' is not allowed", "eval under its Python 2 module name", True)
    add("builtins_exec_legacy.bin",
        legacy(pickle.dumps(Reduce(builtins.exec, ("x=1",)), 2, fix_imports=False)),
        "global 'builtins.exec' is not allowed", "builtins.exec in a legacy stream", True)
    add("subprocess_popen.bin",
        checkpoint(pickle.dumps(Reduce(subprocess.Popen, (["true"],)), 2, fix_imports=False)),
        "global 'subprocess.Popen' is not allowed", "subprocess.Popen", True)
    # getattr chains: reach a dangerous object through an allowed one.
    add("getattr_chain.bin",
        checkpoint(PROTO2 + glob("builtins", "getattr") + tup(glob("collections", "OrderedDict"),
                                                              text("__init__")) + REDUCE + STOP),
        "global 'builtins.getattr' is not allowed", "builtins.getattr", True)
    add("dotted_global.bin",
        checkpoint(PROTO2 + text("torch._utils") + text("_rebuild_tensor_v2.__globals__") +
                   b"\x93" + STOP),
        "global 'torch._utils._rebuild_tensor_v2.__globals__' is not allowed",
        "an attribute path below an allowed global", True)
    add("inst_opcode.bin", checkpoint(PROTO2 + MARK + b"i" + b"os\nsystem\n" + STOP),
        "opcode INST (0x69) is not allowed", "INST builds an arbitrary object", True)
    add("obj_opcode.bin",
        checkpoint(PROTO2 + MARK + glob("collections", "OrderedDict") + b"o" + STOP),
        "opcode OBJ (0x6f) is not allowed", "OBJ builds an arbitrary object", True)
    add("newobj_ex_opcode.bin",
        checkpoint(PROTO2 + glob("collections", "OrderedDict") + EMPTY_TUPLE + b"}" + b"\x92" +
                   STOP),
        "opcode NEWOBJ_EX (0x92) is not allowed", "NEWOBJ_EX", True)
    add("newobj_storage_type.bin",
        checkpoint(PROTO2 + glob("torch", "FloatStorage") + EMPTY_TUPLE + b"\x81" + STOP),
        "NEWOBJ of 'torch.FloatStorage'", "NEWOBJ of anything but OrderedDict")
    add("build_on_list.bin", checkpoint(PROTO2 + b"]" + b"}" + b"b" + STOP),
        "BUILD (0x62) sets attributes of a list", "BUILD on something other than a dict", True)
    add("reduce_storage_type.bin",
        checkpoint(PROTO2 + glob("torch", "FloatStorage") + EMPTY_TUPLE + REDUCE + STOP),
        "storage type 'torch.FloatStorage' may only appear in a persistent id",
        "calling an allowed type", True)
    add("text_persid.bin", checkpoint(PROTO2 + b"P0\n" + STOP), "opcode PERSID (0x50)",
        "text persistent ids", True)
    add("pid_outside_archive.bin", checkpoint(one_tensor_pickle(key="../../../etc/passwd")),
        "not a record name inside the archive", "persistent id with a path")
    add("pid_missing_record.bin", checkpoint(one_tensor_pickle(key="7")),
        "has no record 'archive/data/7'", "persistent id naming no record")
    add("pid_wrong_type.bin",
        checkpoint(state_dict([("w", tensor(storage_pid("0", 6, ("collections", "OrderedDict")),
                                             0, (2, 3), (3, 1)))])),
        "storage type is not a torch storage class", "persistent id with a non-storage type")
    add("complex_storage.bin",
        checkpoint(state_dict([("w", tensor(storage_pid("0", 3, ("torch", "ComplexFloatStorage")),
                                             0, (3,), (1,)))])),
        "global 'torch.ComplexFloatStorage' is not allowed", "a dtype Ember does not have")
    v3 = glob("torch._utils", "_rebuild_tensor_v3") + tup(
        storage_pid("0", 24, ("torch.storage", "UntypedStorage")), integer(0), tup(integer(6)),
        tup(integer(1)), b"\x89", ORDERED_DICT, text("float32")) + REDUCE
    add("v3_dtype_not_a_dtype.bin", checkpoint(state_dict([("w", v3)])),
        "argument 7 is not a torch dtype", "_rebuild_tensor_v3 with a string for its dtype", True)
    add("storage_size_mismatch.bin", checkpoint(one_tensor_pickle(numel=7)),
        "record holds 24 bytes, not 7 elements of F32", "storage shorter than its id says")
    add("tensor_out_of_bounds.bin", checkpoint(one_tensor_pickle(size=(3, 3))),
        "reach past its storage of 6 elements", "tensor view outside its storage")
    add("tensor_offset_out_of_bounds.bin", checkpoint(one_tensor_pickle(offset=1)),
        "reach past its storage of 6 elements", "storage offset pushes the view out")
    add("negative_stride.bin", checkpoint(one_tensor_pickle(stride=(-3, 1))),
        "negative stride", "negative strides")
    add("too_many_marks.bin", checkpoint(PROTO2 + MARK * 5000 + STOP), "more than 4096 MARKs",
        "mark stack bound")
    add("memo_never_stored.bin", checkpoint(PROTO2 + b"h\x05" + STOP),
        "memo entry 5 was never stored", "BINGET of an empty memo slot")
    add("string_past_end.bin", checkpoint(PROTO2 + b"X\xff\xff\xff\x7f" + b"abc"),
        "truncated: needs 2147483647 bytes", "a string length larger than the file")
    add("not_a_dict.bin", checkpoint(PROTO2 + b"]" + STOP), "not a dict of tensors",
        "top-level object is a list")
    add("big_endian.bin",
        make_zip([(PREFIX + "data.pkl", good), (PREFIX + "byteorder", b"big"),
                  (PREFIX + "data/0", bytes(24))]),
        "big-endian checkpoints are not supported", "byteorder big")
    add("legacy_big_endian.bin", legacy(good, little_endian=False),
        "big-endian checkpoints are not supported", "legacy sys_info little_endian False")
    add("legacy_bad_magic.bin", pickle.dumps(12345, 2) + good, "legacy magic number missing",
        "legacy stream with a wrong magic number")
    add("legacy_truncated_storage.bin",
        legacy(one_tensor_pickle(), ["0"], struct.pack("<q", 6) + bytes(10)),
        "truncated: storage '0'", "legacy storage shorter than its count")
    add("legacy_count_mismatch.bin",
        legacy(one_tensor_pickle(), ["0"], struct.pack("<q", 5) + bytes(20)),
        "holds 5 elements but its persistent id says 6", "legacy storage count disagrees")
    add("not_a_checkpoint.bin", b"hello, world\n" * 4, "not a PyTorch checkpoint",
        "neither zip nor pickle")
    add("two_data_pkl.bin",
        make_zip([(PREFIX + "data.pkl", good), ("other/data.pkl", good),
                  (PREFIX + "data/0", bytes(24))]),
        "two data.pkl records", "two archive folders")
    add("deflated.bin",
        make_zip([(PREFIX + "data.pkl", good), (PREFIX + "data/0", bytes(24))], method=8),
        "compression method 8", "compressed entries (a zip bomb needs them)")

    # Directory-level attacks on an otherwise good archive.
    base = checkpoint(good)
    # Entry 0 (data.pkl) claims to be long enough to cover entry 1's local header.
    overlap = patch_central(base, 0, 20, "<I", len(good) + 200)
    overlap = patch_central(overlap, 0, 24, "<I", len(good) + 200)
    add("overlapping_entries.bin", overlap, "overlap", "two entries share bytes")
    add("entry_past_end.bin", patch_central(patch_central(base, 2, 20, "<I", 0x7FFFFFFF), 2, 24,
                                            "<I", 0x7FFFFFFF),
        "run past the entries", "a storage claiming 2 GiB in a small file")
    z64 = make_zip([(PREFIX + "data.pkl", good), (PREFIX + "data/0", bytes(24))], zip64=True)
    bomb = bytearray(z64)
    # The first central entry's ZIP64 extra: size and compressed size 2^62.
    first = z64.index(struct.pack("<I", 0x02014B50))
    name_len = struct.unpack_from("<H", z64, first + 28)[0]
    struct.pack_into("<QQ", bomb, first + 46 + name_len + 4, 1 << 62, 1 << 62)
    add("zip64_size_bomb.bin", bytes(bomb), "run past the entries",
        "ZIP64 size claim of 4 EiB")
    many = bytearray(base)
    end = many.rindex(struct.pack("<I", 0x06054B50))
    struct.pack_into("<HH", many, end + 8, 0xFFFE, 0xFFFE)
    add("entry_count_bomb.bin", bytes(many), "more than the central directory can hold",
        "end record claiming 65534 entries")
    crc = bytearray(base)
    crc[base.index(b"\x80\x02") + 5] ^= 0xFF  # one byte of data.pkl
    add("crc_mismatch.bin", bytes(crc), "fails its CRC-32 check", "data.pkl altered")
    add("truncated_zip.bin", base[: len(base) // 2], "no end of central directory record",
        "archive cut in half")
    add("truncated_pickle_legacy.bin", legacy(good)[:-40], "truncated",
        "legacy stream cut inside the data pickle")

    (BAD / "manifest.json").write_text(json.dumps(cases, indent=1, sort_keys=True) + "\n")

    # ZIP64 repack of the good basic checkpoint: same records, same expected results.
    with zipfile.ZipFile(GOOD / "basic_zip.bin") as z:
        entries = [(info.filename.replace("basic_zip/", "basic_zip64/", 1), z.read(info))
                   for info in z.infolist()]
    (GOOD / "basic_zip64.bin").write_bytes(make_zip(entries, zip64=True))
    for ext in (".json", ".safetensors"):
        shutil.copyfile(GOOD / ("basic_zip" + ext), GOOD / ("basic_zip64" + ext))

    try:
        import torch
    except ImportError:
        print(f"wrote {len(cases)} refused inputs (torch not importable: not cross-checked)")
        return
    for name, case in cases.items():
        if not case["pickle_level"]:
            continue
        try:
            torch.load(BAD / name, weights_only=True)
        except Exception:  # noqa: BLE001 - any refusal will do
            continue
        sys.exit(f"torch.load(weights_only=True) accepted {name}")
    print(f"wrote {len(cases)} refused inputs; torch refuses the pickle-level ones too")


if __name__ == "__main__":
    main()
