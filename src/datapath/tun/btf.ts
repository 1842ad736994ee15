/**
 * Reads struct layouts out of a compiled eBPF object's BTF (the type information clang emits
 * with -g, which libbpf needs anyway): scripts/gen-layouts.mjs turns them into
 * layouts.gen.ts, and layouts.test.ts checks that file against the committed objects.
 *
 * Formats: ELF64 little-endian (the System V gABI: header, section headers, .shstrtab) and BTF
 * (Documentation/bpf/btf.rst; include/uapi/linux/btf.h): a header, then the type section (each
 * type a struct btf_type of 12 bytes followed by kind-specific data) and the string section.
 */

export interface StructLayout {
  name: string;
  /** bytes */
  size: number;
  /** member name -> byte offset */
  offsets: Record<string, number>;
  /** member name -> bytes */
  widths: Record<string, number>;
}

/** The contents of the named ELF section, or null. */
export function elfSection(elf: Buffer, name: string): Buffer | null {
  if (elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2 || elf[5] !== 1) throw new Error('not a 64-bit little-endian ELF object');
  const shoff = Number(elf.readBigUInt64LE(0x28));
  const shentsize = elf.readUInt16LE(0x3a);
  const shnum = elf.readUInt16LE(0x3c);
  const shstrndx = elf.readUInt16LE(0x3e);
  const sh = (i: number) => {
    const o = shoff + i * shentsize;
    return { name: elf.readUInt32LE(o), offset: Number(elf.readBigUInt64LE(o + 0x18)), size: Number(elf.readBigUInt64LE(o + 0x20)) };
  };
  const strtab = sh(shstrndx);
  for (let i = 0; i < shnum; i++) {
    const s = sh(i);
    const at = strtab.offset + s.name;
    if (elf.toString('latin1', at, elf.indexOf(0, at)) === name) return elf.subarray(s.offset, s.offset + s.size);
  }
  return null;
}

// BTF kinds (include/uapi/linux/btf.h) and the size of the data that follows each btf_type
const KIND = { INT: 1, PTR: 2, ARRAY: 3, STRUCT: 4, UNION: 5, ENUM: 6, FWD: 7, TYPEDEF: 8, VOLATILE: 9, CONST: 10, RESTRICT: 11, FUNC: 12, FUNC_PROTO: 13, VAR: 14, DATASEC: 15, FLOAT: 16, DECL_TAG: 17, TYPE_TAG: 18, ENUM64: 19 } as const;
const extra = (kind: number, vlen: number): number => {
  switch (kind) {
    case KIND.INT: case KIND.VAR: case KIND.DECL_TAG: return 4;
    case KIND.ARRAY: return 12;
    case KIND.STRUCT: case KIND.UNION: case KIND.DATASEC: case KIND.ENUM64: return 12 * vlen;
    case KIND.ENUM: case KIND.FUNC_PROTO: return 8 * vlen;
    default: return 0;
  }
};

interface BtfType { name: string; kind: number; vlen: number; kflag: boolean; sizeOrType: number; at: number }

/** Every struct in an object's .BTF, by name (anonymous ones left out). */
export function btfStructs(elf: Buffer): Map<string, StructLayout> {
  const btf = elfSection(elf, '.BTF');
  if (!btf) throw new Error('no .BTF section (compile with -g)');
  if (btf.readUInt16LE(0) !== 0xeb9f) throw new Error('bad BTF magic');
  const hdrLen = btf.readUInt32LE(4);
  const typeOff = hdrLen + btf.readUInt32LE(8);
  const typeLen = btf.readUInt32LE(12);
  const strOff = hdrLen + btf.readUInt32LE(16);
  const str = (o: number) => btf.toString('latin1', strOff + o, btf.indexOf(0, strOff + o));
  const types: (BtfType | null)[] = [null]; // type id 0 is void
  for (let at = typeOff; at < typeOff + typeLen; ) {
    const info = btf.readUInt32LE(at + 4);
    const t = { name: str(btf.readUInt32LE(at)), kind: (info >>> 24) & 0x1f, vlen: info & 0xffff, kflag: info >>> 31 === 1, sizeOrType: btf.readUInt32LE(at + 8), at: at + 12 };
    types.push(t);
    at += 12 + extra(t.kind, t.vlen);
  }
  const sizeOf = (id: number): number => {
    const t = types[id];
    if (!t) throw new Error(`BTF type ${id}: no size`);
    switch (t.kind) {
      case KIND.INT: case KIND.STRUCT: case KIND.UNION: case KIND.ENUM: case KIND.ENUM64: case KIND.FLOAT: return t.sizeOrType;
      case KIND.PTR: return 8;
      case KIND.ARRAY: return sizeOf(btf.readUInt32LE(t.at)) * btf.readUInt32LE(t.at + 8);
      case KIND.TYPEDEF: case KIND.VOLATILE: case KIND.CONST: case KIND.RESTRICT: case KIND.TYPE_TAG: return sizeOf(t.sizeOrType);
      default: throw new Error(`BTF type ${id} (kind ${t.kind}): no size`);
    }
  };
  const out = new Map<string, StructLayout>();
  structs: for (const t of types) {
    if (!t || t.kind !== KIND.STRUCT || t.name === '') continue;
    const offsets: Record<string, number> = {};
    const widths: Record<string, number> = {};
    for (let i = 0; i < t.vlen; i++) {
      const m = t.at + i * 12;
      const bits = btf.readUInt32LE(m + 8);
      const bitOffset = t.kflag ? bits & 0xffffff : bits; // kflag: low 24 bits offset, high 8 bitfield size
      // a struct with bitfields (the kernel's iphdr, tcphdr, in a subprogram's signature) has no
      // byte layout: left out (ulvs_maps.h has none; asking for one finds no such struct)
      if (t.kflag && bits >>> 24 !== 0) continue structs;
      if (bitOffset % 8 !== 0) throw new Error(`struct ${t.name}: member not byte-aligned`);
      const name = str(btf.readUInt32LE(m));
      offsets[name] = bitOffset / 8;
      widths[name] = sizeOf(btf.readUInt32LE(m + 4));
    }
    out.set(t.name, { name: t.name, size: t.sizeOrType, offsets, widths });
  }
  return out;
}
