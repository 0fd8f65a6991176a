"""The vocabulary of the simulated answers: model versions, label taxonomy, words, fictional celebrities,
face landmarks and attributes, segment cues and PPE body parts (names as Rekognition spells them)."""

from __future__ import annotations

LABEL_MODEL_VERSION = "3.0"
FACE_MODEL_VERSION = "7.0"
MODERATION_MODEL_VERSION = "7.0"
TEXT_MODEL_VERSION = "3.0"
PPE_MODEL_VERSION = "1.0"
SEGMENT_MODEL_VERSION = "1.0"
MAX_TEXT_WORDS = 100

# name -> (parents, aliases, categories, has bounding-box instances)
LABELS: dict[str, tuple[list[str], list[str], list[str], bool]] = {
    "Person": ([], ["Human"], ["Person Description"], True),
    "Dog": (["Animal", "Canine", "Mammal", "Pet"], [], ["Animals and Pets"], True),
    "Cat": (["Animal", "Mammal", "Pet"], [], ["Animals and Pets"], True),
    "Car": (["Transportation", "Vehicle"], ["Automobile"], ["Vehicles and Automotive"], True),
    "Bicycle": (["Transportation", "Vehicle"], ["Bike"], ["Hobbies and Interests"], True),
    "Tree": (["Plant"], [], ["Nature and Outdoors"], True),
    "Building": (["Architecture"], [], ["Buildings and Architecture"], True),
    "Chair": (["Furniture"], [], ["Furniture and Furnishings"], True),
    "Bottle": ([], [], ["Kitchen and Dining"], True),
    "Laptop": (["Computer", "Electronics", "Pc"], [], ["Technology and Computing"], True),
    "Road": ([], [], ["Transport and Logistics"], False),
    "Sky": (["Nature", "Outdoors"], [], ["Nature and Outdoors"], False),
    "Grass": (["Plant"], [], ["Nature and Outdoors"], False),
    "City": (["Urban"], ["Town"], ["Buildings and Architecture"], False),
    "Food": ([], [], ["Food and Beverage"], False),
    # Parents are labels too; the service returns them alongside their children.
    "Animal": ([], [], ["Animals and Pets"], False),
    "Mammal": (["Animal"], [], ["Animals and Pets"], False),
    "Pet": (["Animal"], [], ["Animals and Pets"], False),
    "Canine": (["Animal", "Mammal"], [], ["Animals and Pets"], False),
    "Vehicle": (["Transportation"], [], ["Vehicles and Automotive"], False),
    "Transportation": ([], [], ["Vehicles and Automotive"], False),
    "Plant": ([], [], ["Plants and Flowers"], False),
    "Architecture": ([], [], ["Buildings and Architecture"], False),
    "Furniture": ([], [], ["Furniture and Furnishings"], False),
    "Computer": (["Electronics"], [], ["Technology and Computing"], False),
    "Electronics": ([], [], ["Technology and Computing"], False),
    "Pc": (["Computer", "Electronics"], ["Personal Computer"], ["Technology and Computing"], False),
    "Nature": ([], [], ["Nature and Outdoors"], False),
    "Outdoors": ([], [], ["Nature and Outdoors"], False),
    "Urban": ([], [], ["Buildings and Architecture"], False),
}
LEAF_LABELS = [
    name
    for name in LABELS
    if name
    in (
        "Person",
        "Dog",
        "Cat",
        "Car",
        "Bicycle",
        "Tree",
        "Building",
        "Chair",
        "Bottle",
        "Laptop",
        "Road",
        "Sky",
        "Grass",
        "City",
        "Food",
    )
]
MODERATION: dict[str, list[str]] = {
    "Violence": ["Weapons", "Physical Violence"],
    "Alcohol": ["Alcoholic Beverages", "Drinking"],
    "Drugs & Tobacco": ["Smoking"],
    "Rude Gestures": ["Middle Finger"],
    "Visually Disturbing": ["Explosions and Blasts"],
}
WORDS = [
    "EXIT",
    "STOP",
    "OPEN",
    "SALE",
    "MAIN",
    "STREET",
    "COFFEE",
    "PARKING",
    "ONLY",
    "WELCOME",
    "NO",
    "ENTRY",
    "CAUTION",
    "WET",
    "FLOOR",
    "PUSH",
    "PULL",
    "TICKETS",
    "24H",
    "2024",
    "SUNDAY",
]
# Deliberately fictional: the simulator must not put real people's names in test fixtures.
CELEBRITIES = [
    ("Alex Example", "Female"),
    ("Sam Placeholder", "Male"),
    ("Jordan Synthetic", "Nonbinary"),
    ("Casey Simulated", "Female"),
    ("Riley Fixture", "Male"),
    ("Morgan Mockwell", "Female"),
]
CUSTOM_LABELS = ["defect", "scratch", "dent", "crack", "ok"]
EMOTIONS = ["HAPPY", "SAD", "ANGRY", "CONFUSED", "DISGUSTED", "SURPRISED", "CALM", "FEAR"]
LANDMARKS = [
    "eyeLeft",
    "eyeRight",
    "nose",
    "mouthLeft",
    "mouthRight",
    "leftEyeBrowLeft",
    "leftEyeBrowRight",
    "leftEyeBrowUp",
    "rightEyeBrowLeft",
    "rightEyeBrowRight",
    "rightEyeBrowUp",
    "leftEyeLeft",
    "leftEyeRight",
    "leftEyeUp",
    "leftEyeDown",
    "rightEyeLeft",
    "rightEyeRight",
    "rightEyeUp",
    "rightEyeDown",
    "noseLeft",
    "noseRight",
    "mouthUp",
    "mouthDown",
    "leftPupil",
    "rightPupil",
    "upperJawlineLeft",
    "midJawlineLeft",
    "chinBottom",
    "midJawlineRight",
    "upperJawlineRight",
]
FACE_ATTRIBUTES = {
    "AGE_RANGE": "AgeRange",
    "BEARD": "Beard",
    "EMOTIONS": "Emotions",
    "EYE_DIRECTION": "EyeDirection",
    "EYEGLASSES": "Eyeglasses",
    "EYES_OPEN": "EyesOpen",
    "GENDER": "Gender",
    "MOUTH_OPEN": "MouthOpen",
    "MUSTACHE": "Mustache",
    "FACE_OCCLUDED": "FaceOccluded",
    "SMILE": "Smile",
    "SUNGLASSES": "Sunglasses",
}
TECHNICAL_CUES = ["ColorBars", "OpeningCredits", "Content", "BlackFrames", "StudioLogo", "Slate", "EndCredits"]
PPE_PARTS = {"FACE": "FACE_COVER", "HEAD": "HEAD_COVER", "LEFT_HAND": "HAND_COVER", "RIGHT_HAND": "HAND_COVER"}
