#!/usr/bin/env python3
"""Writes hellaswag_stories.txt: 200 tasks in llama.cpp's HellaSwag layout (6 lines per task: context,
gold index, 4 endings), short children's-story sentences of our own writing for the TinyStories-sized
models in ../shared/models. Deterministic (seeded); rerun to regenerate: python3 make_hellaswag_stories.py"""
import random

rng = random.Random(16)
names = ["Lily", "Tom", "Ben", "Sue", "Mia", "Max", "Anna", "Tim", "Sam", "Lucy"]
pron = {"Lily": "She", "Sue": "She", "Mia": "She", "Anna": "She", "Lucy": "She",
        "Tom": "He", "Ben": "He", "Max": "He", "Tim": "He", "Sam": "He"}
scenes = [
    ("went to the park", "saw a big dog", ["The dog wagged its tail and they played with a ball.",
                                            "The dog ran to the tree and barked at a bird."]),
    ("was in the kitchen with mom", "wanted to bake a cake", ["They mixed the flour and the eggs in a big bowl.",
                                                               "Mom gave her a spoon to stir the batter."]),
    ("found a red ball in the garden", "wanted to play", ["She threw the ball high and caught it again.",
                                                          "He kicked the ball to his friend."]),
    ("woke up early in the morning", "looked out of the window", ["The sun was shining and the birds were singing.",
                                                                  "It was raining and the sky was grey."]),
    ("had a small cat", "loved the cat very much", ["Every day they played together in the sun.",
                                                    "The cat liked to sleep on the soft bed."]),
    ("went to the beach with dad", "saw the big blue sea", ["They built a sand castle near the water.",
                                                            "Dad held her hand and they walked in the waves."]),
    ("had a new toy car", "was very happy", ["He drove the car around the room and laughed.",
                                             "She showed the car to all her friends."]),
    ("was walking in the forest", "heard a strange noise", ["It was a little bird stuck in a bush.",
                                                            "A rabbit jumped out from behind a tree."]),
]
wrong = [
    "The moon ate the table and the chair sang loudly.",
    "Seven purple numbers drove the house to the sky.",
    "The spoon was angry at the rain and flew away.",
    "A fish climbed the mountain to read a newspaper.",
    "The window cooked dinner for the shoes.",
    "Green sleep jumped over the idea of a Tuesday.",
    "The car planted a tree inside the soup.",
    "Her shoes talked to the clock about taxes.",
    "The pencil swam to the moon and bought a cow.",
    "Loud chairs were melting into the happy bread.",
]
lines = []
for i in range(200):
    name = rng.choice(names)
    where, what, golds = rng.choice(scenes)
    p = pron[name]
    ctx = f"{name} {where}. {p} {what}."
    gold = rng.choice(golds)
    # Distractors: the fitting endings of other scenes (plausible story text) and nonsense.
    others = [e for w, _, gs in scenes if w != where for e in gs]
    endings = rng.sample(others + wrong, 3)
    g = rng.randrange(4)
    endings.insert(g, gold)
    lines += [ctx, str(g)] + endings
with open("hellaswag_stories.txt", "w") as f:
    f.write("\n".join(lines) + "\n")
