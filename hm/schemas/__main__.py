"""``python -m hm.schemas``: regenerate every shipped schema file from its structs."""

from hm.schemas import SCHEMAS, render

for name, (path, _) in SCHEMAS.items():
    path.write_text(render(name), encoding="utf-8")
    print(f"wrote {path}")
