"""The example pipeline: a chain with a fork, a wait barrier, then two parallel chains.

build ──> test          (test starts from build's workspace)
      └─> package       (a fork: its own copy of build's workspace)
── wait ──
lint                    (independent chains, run in parallel)
stats
"""

from hm.dsl import pipeline, step, wait


@pipeline("hello")
def hello():
    build = step(
        "build",
        "mkdir -p dist && python3 -m py_compile src/greet.py && cp src/greet.py dist/greet.py"
        " && echo built dist/greet.py",
        label="Build",
    )
    step("test", "python3 dist/greet.py World | grep -qx 'Hello, World!' && echo 'tests passed'", builds_in=build)
    step("package", 'tar -cf hello.tar dist && echo "packaged $(wc -c < hello.tar) bytes"', builds_in=build)
    wait()
    step("lint", "python3 -c \"import ast; ast.parse(open('src/greet.py').read()); print('lint ok')\"")
    step("stats", 'echo "$(wc -l < src/greet.py) lines in src/greet.py"', env={"LC_ALL": "C"})
