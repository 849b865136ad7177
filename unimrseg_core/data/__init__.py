"""Data: the procedural RGB/depth/thermal world, its on-disk layout, and readers of real datasets.

The procedural world (``SceneGenerator``) ray-casts a 3-D scene (street, park or
plaza; ground plane in perspective, sky, facades, trees, people, vehicles and
obstacles at real distances) through one pinhole camera, so depth and image
geometry agree, then applies a sensor model per modality.

Cue table: what each modality sees, by design, so that the modalities are
complementary yet each alone still carries most of the scene.

=====================  ===========================  =========================  ===========================
cue                    RGB                          depth                      thermal
=====================  ===========================  =========================  ===========================
person                 clothes of any colour, skin  standing shape at its z    warm (clothes ~ ambient +
                                                                               half way to 307 K, skin 307)
decal (picture of a    same palette and shading as  flat: the wall/board's     the wall/board's temperature
person or car on a     a real person / car          depth                      (cold: not a person)
wall or billboard)
camouflaged box        same colour and texture as   stands out of the ground   slightly cooler than sun-
(obstacle)             the ground under it                                     baked asphalt
vehicle                paint colour, dark glass     box shape; glass and dark  hot hood and tyres when the
                                                    paint drop returns         engine runs, cold glass
vegetation             green, textured, ragged      irregular, see-through     cooler than ambient
                                                    gaps                       (evapotranspiration)
grass ground vs        both green                   flat vs standing           both cool
vegetation
sky vs far buildings   blue / grey vs facades       both invalid (beyond       sky 30-50 K colder; facades
                                                    range)                     near ambient
road markings          white paint                  invisible (flat)           barely visible
windows                dark, reflect the sky; lit   no return (glass)          cold (reflect the sky)
                       at night
cast shadows           dark on the ground           invisible                  cooler ground (no sun)
=====================  ===========================  =========================  ===========================

Conditions (one lighting, plus sensor faults; recorded in ``meta["conditions"]``):
``day``, ``night`` (dark, noisy RGB, street lights), ``fog`` (RGB contrast falls with
distance, depth range cut to 6-12 m and noisier), ``glare`` (a low sun saturates a
region of RGB), ``depth_holes`` (glass, dark paint and puddles read 0),
``thermal_washout`` (crossover: ambient near body temperature, contrast x0.12-0.25).
``test/core/data/test_world_cues.py`` checks that the table holds.

The names below load their module (the renderer: OpenCV) when first asked for, so that the
command-line parsers, which read ``data.conditions`` and ``data.splits``, stay fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from unimrseg_core.lazy import lazy_exports

if TYPE_CHECKING:
    from unimrseg_core.data.conditions import CONDITIONS, ConditionProbabilities
    from unimrseg_core.data.generator import SceneGenerator
    from unimrseg_core.data.sample import Sample

__all__ = ["CONDITIONS", "ConditionProbabilities", "Sample", "SceneGenerator"]

_LAZY: dict[str, str] = {
    "CONDITIONS": "conditions",
    "ConditionProbabilities": "conditions",
    "SceneGenerator": "generator",
    "Sample": "sample",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals(), __all__)
