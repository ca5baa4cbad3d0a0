"""Named groups of MediaPipe face-mesh landmark indices (478-point refined topology).

"Left"/"right" are the subject's own sides, as MediaPipe names them: the subject's
right eye appears on the image's left.
"""
from __future__ import annotations

import numpy as np

N_LANDMARKS = 478

#: Face oval, clockwise in the image starting at the forehead top (10) through the
#: image-left side (subject's right) down to the chin (152) and back up.
FACE_OVAL = [10, 109, 67, 103, 54, 21, 162, 127, 234, 93, 132, 58, 172, 136, 150, 149, 176,
             148, 152, 377, 400, 378, 379, 365, 397, 288, 361, 323, 454, 356, 389, 251, 284,
             332, 297, 338]
FOREHEAD_TOP = 10
CHIN = 152
NOSE_ROOT = 168
NOSE_TIP = 1
UPPER_LIP_TOP = 0
LOWER_LIP_BOTTOM = 17

RIGHT_EYE_RING = [7, 33, 133, 144, 145, 153, 154, 155, 157, 158, 159, 160, 161, 163, 173, 246]
LEFT_EYE_RING = [249, 263, 362, 373, 374, 380, 381, 382, 384, 385, 386, 387, 388, 390, 398, 466]
RIGHT_IRIS = [468, 469, 470, 471, 472]
LEFT_IRIS = [473, 474, 475, 476, 477]
RIGHT_BROW = [46, 52, 53, 55, 63, 65, 66, 70, 105, 107]
LEFT_BROW = [276, 282, 283, 285, 293, 295, 296, 300, 334, 336]
#: Brow outlines split into their upper and lower edges (outer end first).
RIGHT_BROW_UPPER = [70, 63, 105, 66, 107]
RIGHT_BROW_LOWER = [46, 53, 52, 65, 55]
LEFT_BROW_UPPER = [300, 293, 334, 296, 336]
LEFT_BROW_LOWER = [276, 283, 282, 295, 285]
LIPS = [0, 13, 14, 17, 37, 39, 40, 61, 78, 80, 81, 82, 84, 87, 88, 91, 95, 146, 178, 181, 185,
        191, 267, 269, 270, 291, 308, 310, 311, 312, 314, 317, 318, 321, 324, 375, 402, 405,
        409, 415]
MOUTH_CORNERS = [61, 291]

#: Contour sections (oval indices) used by the face-shape operations.
RIGHT_TEMPLE = [54, 21, 162]
LEFT_TEMPLE = [284, 251, 389]
RIGHT_CHEEKBONE = [127, 234, 93]
LEFT_CHEEKBONE = [356, 454, 323]
RIGHT_CHEEK = [93, 132, 58]
LEFT_CHEEK = [323, 361, 288]
RIGHT_JAW = [172, 136, 150, 149]
LEFT_JAW = [397, 365, 379, 378]
CHIN_ARC = [176, 148, 152, 377, 400]
FOREHEAD_ARC = [103, 67, 109, 10, 338, 297, 332]


def eye_centres(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(right, left) eye centres: iris centres, the most stable points of the mesh."""
    return points[468].astype(float), points[473].astype(float)


def face_frame(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """A similarity frame for a face: origin, unit x (subject's right eye -> left eye in
    the image: left to right), unit y (down the face), and the scale (inter-ocular
    distance in pixels). Face-normalised coordinates are ``((p - origin) @ [x, y]) / scale``.
    """
    r, l = eye_centres(points)
    x = l - r
    scale = float(np.hypot(*x))
    if scale < 1e-6:
        scale = 1.0
    x = x / scale
    y = np.array([-x[1], x[0]])
    if np.dot(y, points[CHIN] - points[FOREHEAD_TOP]) < 0:
        y = -y
    origin = (r + l) / 2.0
    return origin, x, y, scale


#: Left-right mirror pairs of the mesh: landmark i of a face is landmark j of its mirror
#: image. Found once by meshing nine real portraits and their horizontal flips and solving
#: the assignment that matches flipped to original points best (every pair agreed); the
#: 28 landmarks on the face's midline are their own mirror.
MIRROR_PAIRS = (
    (3, 248), (7, 249), (20, 250), (21, 251), (22, 252), (23, 253), (24, 254), (25, 255), (26,
    256), (27, 257), (28, 258), (29, 259), (30, 260), (31, 261), (32, 262), (33, 263), (34,
    264), (35, 265), (36, 266), (37, 267), (38, 268), (39, 269), (40, 270), (41, 271), (42,
    272), (43, 273), (44, 274), (45, 275), (46, 276), (47, 277), (48, 278), (49, 279), (50,
    280), (51, 281), (52, 282), (53, 283), (54, 284), (55, 285), (56, 286), (57, 287), (58,
    288), (59, 289), (60, 290), (61, 291), (62, 292), (63, 293), (64, 294), (65, 295), (66,
    296), (67, 297), (68, 298), (69, 299), (70, 300), (71, 301), (72, 302), (73, 303), (74,
    304), (75, 305), (76, 306), (77, 307), (78, 308), (79, 309), (80, 310), (81, 311), (82,
    312), (83, 313), (84, 314), (85, 315), (86, 316), (87, 317), (88, 318), (89, 319), (90,
    320), (91, 321), (92, 322), (93, 323), (95, 324), (96, 325), (97, 326), (98, 327), (99,
    328), (100, 329), (101, 330), (102, 331), (103, 332), (104, 333), (105, 334), (106, 335),
    (107, 336), (108, 337), (109, 338), (110, 339), (111, 340), (112, 341), (113, 342), (114,
    343), (115, 344), (116, 345), (117, 346), (118, 347), (119, 348), (120, 349), (121, 350),
    (122, 351), (123, 352), (124, 353), (125, 354), (126, 355), (127, 356), (128, 357), (129,
    358), (130, 359), (131, 360), (132, 361), (133, 362), (134, 363), (135, 364), (136, 365),
    (137, 366), (138, 367), (139, 368), (140, 369), (141, 370), (142, 371), (143, 372), (144,
    373), (145, 374), (146, 375), (147, 376), (148, 377), (149, 378), (150, 379), (153, 380),
    (154, 381), (155, 382), (156, 383), (157, 384), (158, 385), (159, 386), (160, 387), (161,
    388), (162, 389), (163, 390), (165, 391), (166, 392), (167, 393), (169, 394), (170, 395),
    (171, 396), (172, 397), (173, 398), (174, 399), (176, 400), (177, 401), (178, 402), (179,
    403), (180, 404), (181, 405), (182, 406), (183, 407), (184, 408), (185, 409), (186, 410),
    (187, 411), (188, 412), (189, 413), (190, 414), (191, 415), (192, 416), (193, 417), (194,
    418), (196, 419), (198, 420), (201, 421), (202, 422), (203, 423), (204, 424), (205, 425),
    (206, 426), (207, 427), (208, 428), (209, 429), (210, 430), (211, 431), (212, 432), (213,
    433), (214, 434), (215, 435), (216, 436), (217, 437), (218, 438), (219, 439), (220, 440),
    (221, 441), (222, 442), (223, 443), (224, 444), (225, 445), (226, 446), (227, 447), (228,
    448), (229, 449), (230, 450), (231, 451), (232, 452), (233, 453), (234, 454), (235, 455),
    (236, 456), (237, 457), (238, 458), (239, 459), (240, 460), (241, 461), (242, 462), (243,
    463), (244, 464), (245, 465), (246, 466), (247, 467), (468, 473), (469, 476), (470, 475),
    (471, 474), (472, 477)
)
MIRROR = np.arange(N_LANDMARKS)
for _a, _b in MIRROR_PAIRS:
    MIRROR[_a], MIRROR[_b] = _b, _a


def yaw(points: np.ndarray) -> float:
    """A rough head yaw in degrees from the landmarks' left/right asymmetry (positive:
    the nose is nearer the image-right contour)."""
    p = np.asarray(points, float)
    _, ex, _, _ = face_frame(p)
    nose = p[NOSE_TIP] @ ex
    left, right = p[234] @ ex, p[454] @ ex      # image-left and image-right cheek contour
    a, b = nose - left, right - nose
    if a + b <= 1e-9:
        return 0.0
    return float(np.degrees(np.arcsin(np.clip((a - b) / (a + b), -1.0, 1.0))))
