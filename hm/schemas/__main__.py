from hm.schemas import EVENTS_SCHEMA, render

EVENTS_SCHEMA.write_text(render())
print(f"wrote {EVENTS_SCHEMA}")
