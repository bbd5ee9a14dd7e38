"""`python -m demos.run_demo`: the demo (the story of `demos.story`; see `demos/story/main.py`)."""

from __future__ import annotations

from demos.story.main import main

if __name__ == "__main__":
    raise SystemExit(main())
