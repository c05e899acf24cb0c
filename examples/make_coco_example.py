"""Build `examples/coco/` (a 12-image COCO-format data set) and `examples/tiny-clip/` (a random CLIP).

    python examples/make_coco_example.py

Everything is written by hand or drawn here, so the example ships no COCO content: captions in the
COCO style, COCO category names as object labels, 64 x 64 pictures of coloured shapes standing in
for photographs, and a NegBench-format multiple-choice file over them. `tiny-clip/` is a CLIP
config with a byte-level BPE tokenizer trained on these captions: `semclip-train --model-config
examples/tiny-clip` trains it from random weights on a CPU in seconds. The output is deterministic.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
COCO = HERE / "coco"

# (captions, objects with a colour to draw them in); the image id is the position + 1
IMAGES = [
    (["A man riding a horse on a beach.", "A person on horseback near the ocean."], ["person", "horse"]),
    (["A cat sleeping on a couch.", "A gray cat curled up on a sofa."], ["cat", "couch"]),
    (["Two dogs playing with a frisbee in a park.", "Dogs chasing a frisbee on the grass."], ["dog", "frisbee"]),
    (["A plate of pizza next to a glass of wine.", "A pizza on a plate beside a wine glass."],
     ["pizza", "wine glass", "dining table"]),
    (["A red bus driving down a city street.", "A double decker bus on a busy road."], ["bus", "car", "person"]),
    (["A laptop on a desk next to a cup of coffee.", "An open laptop and a coffee cup on a table."],
     ["laptop", "cup", "dining table"]),
    (["A man holding a surfboard on the beach.", "A surfer carrying his board near the waves."],
     ["person", "surfboard"]),
    (["A kitchen with a refrigerator and an oven.", "A small kitchen with a fridge and a stove."],
     ["refrigerator", "oven", "sink"]),
    (["A giraffe standing next to a tree.", "A tall giraffe eating leaves from a tree."], ["giraffe"]),
    (["A woman holding an umbrella in the rain.", "A person with an umbrella walking in the rain."],
     ["person", "umbrella"]),
    (["A train stopped at a station.", "A passenger train waiting at the platform."], ["train", "person"]),
    (["A bowl of fruit with bananas and apples.", "Bananas and apples in a bowl on a table."],
     ["bowl", "banana", "apple", "dining table"]),
]
CATEGORIES = sorted({name for _, objects in IMAGES for name in objects} | {"bicycle", "clock"})
SUPER = {"person": "person", "dog": "animal", "cat": "animal", "horse": "animal", "giraffe": "animal"}


def draw(objects: list[str], rng: random.Random) -> Image.Image:
    image = Image.new("RGB", (64, 64), (rng.randint(150, 230),) * 3)
    canvas = ImageDraw.Draw(image)
    for name in objects:
        seeded = random.Random(name)
        colour = tuple(seeded.randint(20, 235) for _ in range(3))
        x, y, size = rng.randint(2, 40), rng.randint(2, 40), rng.randint(12, 22)
        (canvas.ellipse if seeded.random() < 0.5 else canvas.rectangle)([x, y, x + size, y + size], fill=colour)
    return image


def coco_files() -> None:
    rng = random.Random(0)
    (COCO / "val2017").mkdir(parents=True, exist_ok=True)
    (COCO / "annotations").mkdir(exist_ok=True)
    images, captions, instances = [], [], []
    category_id = {name: i + 1 for i, name in enumerate(CATEGORIES)}
    for index, (texts, objects) in enumerate(IMAGES, start=1):
        file_name = f"{index:012d}.jpg"
        draw(objects, rng).save(COCO / "val2017" / file_name, quality=85)
        images.append({"id": index, "file_name": file_name, "width": 64, "height": 64})
        for text in texts:
            captions.append({"id": 1000 + len(captions), "image_id": index, "caption": text})
        for name in objects:
            instances.append({"id": 5000 + len(instances), "image_id": index, "category_id": category_id[name],
                              "area": float(rng.randint(100, 900)), "bbox": [0, 0, 10, 10], "iscrowd": 0})
    categories = [{"id": i, "name": name, "supercategory": SUPER.get(name, "object")} for name, i in category_id.items()]
    write_json(COCO / "annotations" / "captions_val2017.json", {"images": images, "annotations": captions})
    write_json(COCO / "annotations" / "instances_val2017.json",
               {"images": images, "annotations": instances, "categories": categories})
    negbench_mcq(rng)


def negbench_mcq(rng: random.Random) -> None:
    """NegBench's multiple-choice layout: the right answer first, then hybrid, affirmation, negation."""
    rows = []
    for index, (_, objects) in enumerate(IMAGES, start=1):
        if len(objects) < 2:
            continue
        a, b = objects[:2]
        missing = rng.choice([name for name in CATEGORIES if name not in objects])
        template = ("positive", "negative", "hybrid")[index % 3]
        right = {"positive": f"This image features {a} and {b}", "negative": f"This image does not feature {missing}",
                 "hybrid": f"This image features {b}, but not {missing}"}[template]
        rows.append({"image_path": f"val2017/{index:012d}.jpg", "correct_answer": 0, "caption_0": right,
                     "caption_1": f"This image features {missing}, but not {b}",
                     "caption_2": f"This image features {missing}", "caption_3": f"This image does not feature {a}",
                     "correct_answer_template": template})
    with open(COCO / "negbench_mcq.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def write_json(path: Path, value) -> None:
    path.write_text(json.dumps(value, indent=1) + "\n", encoding="utf-8")


def tiny_clip() -> None:
    from semclip_train.random_model import write_random_clip_folder

    texts = [text for texts, _ in IMAGES for text in texts] + CATEGORIES
    texts += ["no", "not", "without", "there is no", "with no", "but not", "this image features", "does not feature"]
    write_random_clip_folder(HERE / "tiny-clip", texts * 4, preset="tiny", vocab_size=400)


if __name__ == "__main__":
    coco_files()
    tiny_clip()
