"""Writes open_verb_captions.txt: 200 captions whose verbs are outside the rules generator's hand-kept
list (50 subject-verb-object-place scenes, each in four shapes). Rerun to rebuild the file."""

from pathlib import Path

SCENES = """chef|garnish|a plate of pasta|in a restaurant kitchen
woman|knit|a red scarf|on a park bench
boy|flip|a pancake|in a small kitchen
welder|weld|a metal beam|in a workshop
dog|fetch|a stick|in the park
barista|pour|milk into a cup|behind the counter
gardener|water|the plants|on a balcony
street performer|juggle|three balls|on a busy street
baker|knead|a ball of dough|on a wooden table
mechanic|tighten|a bolt|under a car
housekeeper|dust|a bookshelf|in a hotel room
man|sharpen|a knife|at the kitchen counter
teenager|text|a friend|on a crowded train
farmer|harvest|the wheat|in a golden field
boy|fold|a paper airplane|at his desk
woman|iron|a white shirt|in the laundry room
carpenter|sand|a wooden chair|in a garage
cook|fry|two eggs|in a cast iron pan
nurse|bandage|a patient's arm|in a hospital room
man|scrub|the floor|in a large kitchen
student|highlight|a textbook|in the library
cat|scratch|a cardboard box|in the living room
child|stack|wooden blocks|on the carpet
janitor|mop|the hallway|in a school
fisherman|mend|a fishing net|on the dock
woman|sew|a button onto a coat|near a window
baker|whisk|the eggs|in a metal bowl
clerk|stamp|a passport|at a border desk
toddler|wrap|a gift|under a christmas tree
painter|sketch|a portrait|in a sunny studio
volunteer|plant|a young tree|in a city park
woman|frost|a birthday cake|on a kitchen island
man|hammer|a nail|into a wooden fence
gardener|prune|a rose bush|in a front yard
girl|braid|her sister's hair|on the porch
boy|rinse|a bowl|under the faucet
girl|scoop|ice cream|into a cone
man|spread|butter on toast|at the breakfast table
father|tie|a shoelace|on the sidewalk
artisan|weave|a basket|in a village square
photographer|adjust|a tripod|on a hill
boy|carve|a pumpkin|on the back porch
chef|season|a steak|in a busy kitchen
man|polish|a vintage car|in a driveway
musician|pluck|a harp|in a concert hall
girl|squeeze|a lemon|over a salad
woman|sip|hot coffee|in a quiet cafe
player|dribble|a basketball|on an outdoor court
surgeon|stitch|a wound|in an operating room
musician|tune|a guitar|on a small stage""".splitlines()


def captions() -> list[str]:
    from lemminflect import getInflection

    out = []
    for n, line in enumerate(SCENES):
        subject, verb, obj, place = line.split("|")
        third = getInflection(verb, "VBZ")[0]
        article = "An" if subject[0] in "aeiou" else "A"
        plural = {"man": "men", "woman": "women", "child": "children"}.get(subject, subject + "s")
        out += [f"{article} {subject} {third} {obj}.", f"{article} {subject} {third} {obj} {place}.",
                f"The {subject} {third} {obj} {place}.", f"Two {plural} {verb} {obj} {place}."]
    return out


if __name__ == "__main__":
    target = Path(__file__).with_name("open_verb_captions.txt")
    target.write_text("\n".join(captions()) + "\n", encoding="utf-8")
    print(f"wrote {len(captions())} captions to {target}")
