"""Small builders shared by the tests."""

from PIL import Image


def seed_dataset(root, n=4, classes=2, label_txt=True):
    """A valid seed-layout dataset: ``n`` small JPEGs in ``classes`` classes, val_label.txt and
    (optionally) label.txt. Passes every check the runner makes before a notebook starts."""
    (root / "val").mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        name = f"ILSVRC2012_val_{i + 1:08d}.JPEG"
        Image.new("RGB", (40, 40), (50 * i % 255, 90, 30)).save(root / "val" / name)
        lines.append(f"{name} {i % classes}")
    (root / "val_label.txt").write_text("\n".join(lines) + "\n")
    if label_txt:
        (root / "label.txt").write_text("\n".join(f"class {c}, thing" for c in range(classes)) + "\n")
    return root
