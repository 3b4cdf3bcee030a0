"""Tutorial-style training loops that aigc's speed is compared against (not part of aigc)."""
