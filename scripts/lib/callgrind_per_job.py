"""Instructions per call of the bench's commands, from a callgrind file
recorded with --toggle-collect=call (see scripts/profile).

A module command's cost is its handler's inclusive cost plus its share of the
dispatch around every module command (the server's dispatcher, argument
conversion, context set-up), which is the dispatcher's inclusive cost minus
all handlers, spread over all module calls."""
import collections
import re
import sys

names = {}
calls = collections.Counter()  # callee id -> calls
inclusive = collections.Counter()  # callee id -> inclusive instructions
edges = collections.Counter()  # (caller id, callee id) -> inclusive instructions
fn = cfn = None
after_calls = False
for line in open(sys.argv[1]):
    m = re.match(r"(c?fn)=\((\d+)\)(?: (.*))?", line)
    if m:
        kind, i, name = m.groups()
        if name:
            names[i] = name.strip()
        if kind == "fn":
            fn = i
        else:
            cfn = i
        continue
    m = re.match(r"calls=(\d+)", line)
    if m:
        calls[cfn] += int(m.group(1))
        after_calls = True
        continue
    parts = line.split()
    if after_calls and len(parts) >= 2 and re.match(r"^[+\-*0-9]", parts[0]):
        inclusive[cfn] += int(parts[1])
        edges[(fn, cfn)] += int(parts[1])
        after_calls = False

ids = {n: i for i, n in names.items()}


def per_call(name):
    i = ids.get(name)
    return (inclusive[i] / calls[i], calls[i]) if i and calls[i] else (0.0, 0)


dispatcher = ids["ValkeyModuleCommandDispatcher"]
# Handlers are called only by the dispatch (through the panic guard).
handlers = sum(
    inclusive[i]
    for i, n in names.items()
    if re.match(r"flowfabric::shell::handlers::\w+::\w+$", n)
)
overhead = (inclusive[dispatcher] - handlers) / calls[dispatcher]

ff = 0.0
for h in ["execution::submit", "claims::claim", "execution::complete"]:
    v, n = per_call("flowfabric::shell::handlers::" + h)
    ff += v + overhead
    print(f"FF.{h.split('::')[1].upper():<10} {v + overhead:8.0f} instructions/call ({n} calls)")
lst = 0.0
for c in ["rpushCommand", "lpopCommand", "incrCommand"]:
    v, n = per_call(c)
    lst += v
    print(f"{c[:-7].upper():<13} {v:8.0f} instructions/call ({n} calls)")
print(f"module dispatch {overhead:.0f}/call (included above)")
print(f"per job: flowfabric {ff:.0f}, list {lst:.0f}, ratio {ff / lst:.2f}")
