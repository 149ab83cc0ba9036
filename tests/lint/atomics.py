#!/usr/bin/env python3
"""The memory-ordering rules of STYLE that a reading of the code can check
(issue 14, item 5), over runtime/:

 - no _Atomic object is cast to a plain pointer: an & expression naming a
   field declared _Atomic somewhere in runtime/ is never cast to a
   pointer to a non-_Atomic type;
 - every magic word (a field named magic) is declared _Atomic, so that it
   is published and read as an atomic (release/acquire at each end);
 - every atomic_thread_fence, and every _explicit atomic with an order
   other than relaxed, has a comment on its line or the lines just above
   (its partner, or why).

Prints each finding as file:line: what, and exits 1 when there is one.
"""
import os
import re
import sys

root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), '..', '..', 'runtime')
files = []
for d, _, fs in os.walk(root):
    for f in fs:
        if f.endswith(('.c', '.h')):
            files.append(os.path.join(d, f))

atomic_fields = set()
decl = re.compile(r'_Atomic\s+[\w ]+?\b(\w+)\s*(\[[^\]]*\])?\s*[;,=]')
for path in files:
    for line in open(path):
        for m in decl.finditer(line):
            atomic_fields.add(m.group(1))
        m = re.search(r'_Atomic\s+[\w ]+?\s(\w+)\s*,\s*(.*);', line)
        if m:
            for name in re.findall(r'(\w+)\s*(?:,|$)', m.group(2)):
                atomic_fields.add(name)

problems = []
cast = re.compile(r'\(\s*(const\s+)?(volatile\s+)?(u?int\d+_t|int|unsigned|long|char|void)\s*\*\s*\)\s*&\s*([\w.\->\[\] ]+)')
for path in sorted(files):
    lines = open(path).read().split('\n')
    for i, line in enumerate(lines):
        for m in cast.finditer(line):
            last = re.findall(r'(\w+)', m.group(4))
            if last and last[-1] in atomic_fields:
                problems.append('%s:%d: _Atomic field %s cast to a plain %s *' % (path, i + 1, last[-1], m.group(3)))
        if re.search(r'^\s*(uint32_t|uint64_t|int32_t)\s+magic\s*;', line):
            problems.append('%s:%d: a magic word that is not _Atomic' % (path, i + 1))
        if 'atomic_thread_fence(' in line or re.search(r'memory_order_(acquire|release|acq_rel|seq_cst)', line):
            ctx = '\n'.join(lines[max(0, i - 3):i + 1])
            if '/*' not in ctx and '*/' not in ctx and '//' not in ctx and ' * ' not in ctx:
                problems.append('%s:%d: an ordered atomic with no comment naming its partner' % (path, i + 1))

for p in problems:
    print(p)
print('atomics lint: %d file(s), %d _Atomic field names, %d finding(s)' % (len(files), len(atomic_fields), len(problems)))
sys.exit(1 if problems else 0)
