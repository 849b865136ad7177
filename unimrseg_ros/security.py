"""SROS2 access-control policy for ``unimrseg_node``: exactly the topics and services it uses.

With ROS 2 security enforced (RELIABILITY.md, "Running with SROS2"), a signed permissions file
made from this policy lets the node's enclave subscribe to the three cameras and publish its
outputs and nothing else. No other participant can publish fake masks under its name, and only
enclaves the robot's keystore trusts can set its parameters or drive its lifecycle. The
policy is generated from :mod:`unimrseg_core.topics`, so it cannot drift from the node's
names; a test checks it against the entities of a running node.

    python -m unimrseg_ros.security > config/sros2_policy.xml
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from typing import Final
from xml.etree import ElementTree as ET

from unimrseg_core import topics

__all__ = ["ENCLAVE", "PUBLISHES", "REPLIES", "SUBSCRIBES", "policy_xml", "subscribes"]

ENCLAVE: Final = f"/unimrseg/{topics.NODE_NAME}"
"""The enclave the node runs in: ``--ros-args --enclave /unimrseg/unimrseg_node``."""

SUBSCRIBES: Final = (*topics.INPUTS.values(), *topics.CAMERA_INFOS.values())
"""The inputs with every modality on the raw transport (the defaults and the committed policy),
and each camera's CameraInfo (registration)."""


def subscribes(transports: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The input topics for ``transports`` (modality -> image_transport; raw where not given) and
    the CameraInfo topics (the same whatever the transport)."""
    given = transports or {}
    images = tuple(topics.input_topic(m, given.get(m, "raw")) for m in topics.INPUTS)
    return (*images, *topics.CAMERA_INFOS.values())


PUBLISHES: Final = (
    topics.CLASS_MASK,
    topics.COLORED_MASK,
    topics.SALIENCY_MASK,
    topics.SALIENCY_PROBABILITY,
    topics.OVERLAY,
    topics.MASK_CAMERA_INFO,
    topics.STATUS,
    topics.LABELS,
    topics.DIAGNOSTICS,
    "/rosout",
    "/parameter_events",
    "~/transition_event",  # lifecycle state changes
)
REPLIES: Final = (  # ~ is the node's own name: its parameter and lifecycle services
    *(
        f"~/{s}"
        for s in (
            "describe_parameters",
            "get_parameter_types",
            "get_parameters",
            "get_type_description",
            "list_parameters",
            "set_parameters",
            "set_parameters_atomically",
            "change_state",
            "get_available_states",
            "get_available_transitions",
            "get_state",
            "get_transition_graph",
        )
    ),
)


def policy_xml(
    namespace: str = "/",
    node: str = topics.NODE_NAME,
    enclave: str = ENCLAVE,
    transports: Mapping[str, str] | None = None,
) -> str:
    """The policy document (SROS2 policy format 0.2.0) for one node in ``namespace``.

    ``transports`` is the node's ``<modality>.transport`` parameters: a compressed input is
    another topic, which the policy must allow or the node never receives it.
    """
    policy = ET.Element("policy", version="0.2.0")
    profile = ET.SubElement(
        ET.SubElement(ET.SubElement(ET.SubElement(policy, "enclaves"), "enclave", path=enclave), "profiles"),
        "profile",
        ns=namespace,
        node=node,
    )
    for attribute, names in (("subscribe", subscribes(transports)), ("publish", PUBLISHES)):
        group = ET.SubElement(profile, "topics", {attribute: "ALLOW"})
        for name in names:
            ET.SubElement(group, "topic").text = name
    services = ET.SubElement(profile, "services", reply="ALLOW")
    for name in REPLIES:
        ET.SubElement(services, "service").text = name
    ET.indent(policy, space="  ")
    header = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<!-- SROS2 policy of unimrseg_node, written by `python -m unimrseg_ros.security`.\n"
        "     Use: ros2 security create_permission KEYSTORE " + enclave + " config/sros2_policy.xml\n"
        "     (RELIABILITY.md, 'Running with SROS2'). -->\n"
    )
    return header + ET.tostring(policy, encoding="unicode") + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print the node's SROS2 access-control policy.")
    parser.add_argument("--namespace", default="/", help="the node's namespace (default /)")
    parser.add_argument("--node", default=topics.NODE_NAME, help="the node's name")
    parser.add_argument("--enclave", default=ENCLAVE, help="the enclave path")
    parser.add_argument(
        "--transport",
        action="append",
        default=[],
        metavar="MODALITY=TRANSPORT",
        help="an input's image_transport as the node's <modality>.transport (e.g. depth=compressedDepth)",
    )
    args = parser.parse_args(argv)
    transports = dict(item.partition("=")[::2] for item in args.transport)
    unknown = sorted(set(transports) - set(topics.INPUTS))
    if unknown:
        parser.error(f"--transport: unknown modality {unknown[0]!r}; valid: {', '.join(topics.INPUTS)}")
    try:
        subscribes(transports)
    except ValueError as exc:
        parser.error(f"--transport: {exc}")
    sys.stdout.write(policy_xml(args.namespace, args.node, args.enclave, transports))
    return 0


if __name__ == "__main__":
    sys.exit(main())
