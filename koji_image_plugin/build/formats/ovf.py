"""The OVF 1.0 descriptor of a VirtualBox Vagrant box (``box.ovf``): one VM with one
streamOptimized VMDK on a SATA controller and one NAT network card.

It holds what VirtualBox's importer reads (the sections imagefactory's VirtualBox box,
behind Koji's ``vagrant-virtualbox``, writes too): References, DiskSection with the
virtual capacity, NetworkSection, and a VirtualSystem whose OperatingSystemSection tells
VirtualBox the guest is a 64-bit Linux (without it VirtualBox leaves long mode off) and
whose VirtualHardwareSection lists CPU, memory, controller, disk and network card. No
UUIDs or timestamps: the same disk gives the same descriptor.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

OVF = "http://schemas.dmtf.org/ovf/envelope/1"
RASD = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
VSSD = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData"
VBOX = "http://www.virtualbox.org/ovf/machine"
STREAM_OPTIMIZED = "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"

#: arch -> (CIM_OperatingSystem OsType: "Linux 2.6.x [64-Bit]", VirtualBox's OS type)
OS_TYPES = {"x86_64": ("102", "Linux26_64"), "i686": ("101", "Linux26")}


@dataclass(frozen=True)
class Machine:
    name: str
    disk_file: str
    disk_file_size: int
    capacity: int
    arch: str
    cpus: int = 1
    memory_mib: int = 1024


def _el(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrs)
    el.text = text
    return el


def _item(hw: ET.Element, instance: int, rtype: int, name: str,
          **fields: str) -> None:
    """One RASD item; its elements in the schema's order, which is alphabetical."""
    item = _el(hw, f"{{{OVF}}}Item")
    for key, value in sorted({"ElementName": name, "InstanceID": str(instance), **fields,
                              "ResourceType": str(rtype)}.items()):
        _el(item, f"{{{RASD}}}{key}", value)


def descriptor(m: Machine) -> bytes:
    if m.arch not in OS_TYPES:
        raise ValueError(f"a VirtualBox box is for {', '.join(OS_TYPES)}, not {m.arch}")
    for prefix, uri in (("ovf", OVF), ("rasd", RASD), ("vssd", VSSD), ("vbox", VBOX)):
        ET.register_namespace(prefix, uri)
    env = ET.Element(f"{{{OVF}}}Envelope", {f"{{{OVF}}}version": "1.0"})
    refs = _el(env, f"{{{OVF}}}References")
    _el(refs, f"{{{OVF}}}File", **{f"{{{OVF}}}href": m.disk_file, f"{{{OVF}}}id": "file1",
                                   f"{{{OVF}}}size": str(m.disk_file_size)})
    disks = _el(env, f"{{{OVF}}}DiskSection")
    _el(disks, f"{{{OVF}}}Info", "List of the virtual disks used in the package")
    _el(disks, f"{{{OVF}}}Disk", **{
        f"{{{OVF}}}capacity": str(m.capacity), f"{{{OVF}}}diskId": "vmdisk1",
        f"{{{OVF}}}fileRef": "file1", f"{{{OVF}}}format": STREAM_OPTIMIZED})
    nets = _el(env, f"{{{OVF}}}NetworkSection")
    _el(nets, f"{{{OVF}}}Info", "Logical networks used in the package")
    _el(_el(nets, f"{{{OVF}}}Network", **{f"{{{OVF}}}name": "NAT"}),
        f"{{{OVF}}}Description", "Logical network used by this appliance.")
    vs = _el(env, f"{{{OVF}}}VirtualSystem", **{f"{{{OVF}}}id": m.name})
    _el(vs, f"{{{OVF}}}Info", "A virtual machine")
    cim_os, vbox_os = OS_TYPES[m.arch]
    os_sec = _el(vs, f"{{{OVF}}}OperatingSystemSection", **{f"{{{OVF}}}id": cim_os})
    _el(os_sec, f"{{{OVF}}}Info", "The kind of installed guest operating system")
    _el(os_sec, f"{{{OVF}}}Description", vbox_os)
    _el(os_sec, f"{{{VBOX}}}OSType", vbox_os, **{f"{{{OVF}}}required": "false"})
    hw = _el(vs, f"{{{OVF}}}VirtualHardwareSection")
    _el(hw, f"{{{OVF}}}Info", "Virtual hardware requirements for a virtual machine")
    system = _el(hw, f"{{{OVF}}}System")
    for key, value in (("ElementName", "Virtual Hardware Family"), ("InstanceID", "0"),
                       ("VirtualSystemIdentifier", m.name),
                       ("VirtualSystemType", "virtualbox-2.2")):
        _el(system, f"{{{VSSD}}}{key}", value)
    _item(hw, 1, 3, f"{m.cpus} virtual CPU", VirtualQuantity=str(m.cpus))
    _item(hw, 2, 4, f"{m.memory_mib} MB of memory", AllocationUnits="MegaBytes",
          VirtualQuantity=str(m.memory_mib))
    _item(hw, 3, 20, "sataController0", Address="0", ResourceSubType="AHCI")
    _item(hw, 4, 17, "disk1", AddressOnParent="0", HostResource="/disk/vmdisk1", Parent="3")
    _item(hw, 5, 10, "Ethernet adapter on 'NAT'", AutomaticAllocation="true",
          Connection="NAT", ResourceSubType="E1000")
    ET.indent(env)
    text: bytes = ET.tostring(env, encoding="utf-8", xml_declaration=True)
    return text + b"\n"
