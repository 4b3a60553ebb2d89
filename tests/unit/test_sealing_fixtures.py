"""Format fixtures: bytes written by format version 1, kept so every later reader reads them.

A change to the writer must not change how these decode. When a new format version
appears, add its fixture beside these (borg keeps one per version too). The identity below
is a throwaway made for these fixtures only.
"""

from __future__ import annotations

import base64
import io

from gateway.sealing import SegmentMetadata, inspect_segment, read_metadata, unseal, unseal_range
from gateway.sealing.container import ContainerReader

IDENTITY = "AGE-SECRET-KEY-1Q0DKZRR5FYTNQ3D5TC9ZEFXH8NRGJNAVWKRT7CJHAFYW064VLDYQYMMS7J"
PLAINTEXT = b"coolstorage format v1 fixture\n" * 3
HEADER_MAC = bytes.fromhex("2a60c2ec7f7956519d1ce1578aa864b1fb053096f8f76d84cf23eaa9d04d6f15")
INDEX_MAC = bytes.fromhex("e4b8d34b81987e32706c4a84a189c47f8a3f28401b239a380774870bd2cc0e07")

SEGMENT_V1 = base64.b64decode(
    """
YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSB1VTBjZEZ3dUh3V2hFUjJJYmM1eXUrdndWd0VIUTNDS29oanRhanZq
WDFBCi8zMW1mdkpURThYVVhudHNQUUxqdXRCeEpQVHR4OWwyRWdsTkoyTG5sV1UKLS0tIEttREM3SDk1VmxHZEhPRlhpcWhr
c2ZzRk1KYjQ5MjJFenlQcXFkQk5ieFUK7rIf8v5IxMIb8szdQ9sJ0OV64bxfQ3/oUvwtOje1gsopDVoxsGRzATp1ouvg02e1
j5FoXnHls9YpAsWJBX6takzexHBYia1boF1fMs0GC3X9Yftrcj07TLcht6yiI0HshqMNityGAyfney2GTPn5BWgk9D3yUtDk
9iQ4tz3UmQj8hcpyWQbtzs+4Bk7PzlSNVy8V9rhs7GoYaliX49qCXVebEiJPchwvGvrQ2imkV8yoW9I1tfMJwVgTq766tjPv
Mu0ol9fnLaWrSdTRA7MN44VeX59GGSDzWkBUllK8WmbN1uMWSvNJsN1NOsyoNFf1g1vuTNlVc7jpoJfR50M4bakzq5Ng6lng
IuJdcOaoEG4JusaY5/1uWLGUeyJxsI5o9lfsq+40TdhHkSCTcNZcki2E76UZXHPpRjn+gAwknm6+FREL0pmNqny6CC9S32iT
EhQfcLf7AhklUwkWcsU3wjWjVku7OnvLbiNsTQa01DXJ3CsBZnoHwH4yp3pEAdZ0FRBXefPy1i4Y7LUtxz9LEfysCLzlFkpg
kZ5lhmTeIqTXJYyI0LQCAstPwJpAbJiYSdYmAJI933rxB2TMz0dvLik/I1CErGbjLw2xZLlWUeIWv7+phtBwRT1OLoDCn9Sl
yjSbzZZc4AWBXv3W1oc72s/QZuw3HDhp5HMl16kA93Pd+kA9kQtGJbBUIbc3yxT2T8f5B9HWbJ5om2j0fWa11l0Di5nJPnwJ
pSaMnwiI1dIFgVhAQY04ewknmBAzK2f83fSy5aa8G6nT4owi3J29NduqkPdhoA==
"""
)

CONTAINER_V1 = base64.b64decode(
    """
YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSB1VTBjZEZ3dUh3V2hFUjJJYmM1eXUrdndWd0VIUTNDS29oanRhanZq
WDFBCi8zMW1mdkpURThYVVhudHNQUUxqdXRCeEpQVHR4OWwyRWdsTkoyTG5sV1UKLS0tIEttREM3SDk1VmxHZEhPRlhpcWhr
c2ZzRk1KYjQ5MjJFenlQcXFkQk5ieFUK7rIf8v5IxMIb8szdQ9sJ0OV64bxfQ3/oUvwtOje1gsopDVoxsGRzATp1ouvg02e1
j5FoXnHls9YpAsWJBX6takzexHBYia1boF1fMs0GC3X9Yftrcj07TLcht6yiI0HshqMNityGAyfney2GTPn5BWgk9D3yUtDk
9iQ4tz3UmQj8hcpyWQbtzs+4Bk7PzlSNVy8V9rhs7GoYaliX49qCXVebEiJPchwvGvrQ2imkV8yoW9I1tfMJwVgTq766tjPv
Mu0ol9fnLaWrSdTRA7MN44VeX59GGSDzWkBUllK8WmbN1uMWSvNJsN1NOsyoNFf1g1vuTNlVc7jpoJfR50M4bakzq5Ng6lng
IuJdcOaoEG4JusaY5/1uWLGUeyJxsI5o9lfsq+40TdhHkSCTcNZcki2E76UZXHPpRjn+gAwknm6+FREL0pmNqny6CC9S32iT
EhQfcLf7AhklUwkWcsU3wjWjVku7OnvLbiNsTQa01DXJ3CsBZnoHwH4yp3pEAdZ0FRBXefPy1i4Y7LUtxz9LEfysCLzlFkpg
kZ5lhmTeIqTXJYyI0LQCAstPwJpAbJiYSdYmAJI933rxB2TMz0dvLik/I1CErGbjLw2xZLlWUeIWv7+phtBwRT1OLoDCn9Sl
yjSbzZZc4AWBXv3W1oc72s/QZuw3HDhp5HMl16kA93Pd+kA9kQtGJbBUIbc3yxT2T8f5B9HWbJ5om2j0fWa11l0Di5nJPnwJ
pSaMnwiI1dIFgVhAQY04ewknmBAzK2f83fSy5aa8G6nT4owi3J29NduqkPdhoGFnZS1lbmNyeXB0aW9uLm9yZy92MQotPiBY
MjU1MTkgR0ZSYmR1azFBYVdxVTJHcHNzem81bWJNL013NTdub2U1SXlVVXZSaTkwTQpLd3hFNm1sbmpKaHNDODdudHJaVHA4
WkM2Qzg5L01vV09GZEdXL0JXV0VNCi0tLSBtNDM3S29mRjhFQlhaZzg4UFk1NXdnUnhSUXVLMU5QNk4yUXBEVkpqNHNzCtrc
WauMryJLXNQkzw4C5lsHUK3GA3rZeCUGboWPhm32R+sfaZDFOJUZLZEMqDNiIxklOFSAjoJMPpsmh8MLqUFe2GNNCHz5a8ZT
vQYxCzGPZuWho9VFZCFUsZM2BcmzNOZKw2IcSrJr4NMWMpgpvhcTjmNr1JY3BLLw/zeLbCa0aD2n4uB7rguhCFht3DRQEan+
bTKN66vSa8qZdd3ypmbow7bE9JjZdqFdc10Fd3YZ1PLhw/FisUCausWItWGiPophVhwFW5lKf8oAff40L5y05hBkG9MLFEvo
wyiidmoZWknkvR/uscQx3Wl3PO9tJ8zTFN306kWq0Z/kub1QGHVlQKSm2Uwrd8GZg72S1JSS8eieUqPlqWsWGRHBa7fgVYxO
cSR75czbwyBnDPVsg55GYVEPU6N0cKBVO7mnFPeMSOsUXh+oSQHm49ivWEDs/vYAf/D+iB2AcGmkzBNIhyq/rTgQJO6oV12O
oEL04dhW/8UBjF6pmonfMy1RsmSLBTZdAv6QGPapwiJSzDfWZxHNJlV2Mw4EwFxEIc0LadLYOGfWdfsQkO3G1HHBVid1gNmw
UsMT/ATuPzlhZ2UtZW5jcnlwdGlvbi5vcmcvdjEKLT4gWDI1NTE5IHhKRDVtVVI0cDJPSEo3clBtdmEwSUdQN3lZd2NBZEE0
Z2kvWVd1NVQ4eXMKayswLzBvQzd6SG5lN2Myd1FVOWUxOFZqMTVMVnBrL1daWlVxdGUydW1BMAotLS0gNUxqVFM0R1lmakp3
YkVxRW9ZbkVmNG8vS0VBYkk1bzRCM1NIQzlMTURnYwre454gUtTkoGBmPBLjhZOjZ7am16sbi+q0G8/qZRz9eA6pj2iDOygh
w/WJmvAD44C6XulYC1k1Nq2G3ns0Y09XBakv2eA22HfJi7hOk/fVSqA2WTf7sFbZoTNkt1g/EZnIr1BIUSvr4uvdSjzj4QoU
ReMm73Ah2aIkTqZRhejYZbFRkY+k1gACzl/A4YSA/IhQl7AfR/P4Q9V1MsZ4AXjrefdz7El6MCFB/mgOcFzKz2Zak4Ale3KX
rpOYdls1vPpepboJuCkDYUPYfuVfT5lSzDDLWDIl97cpYUCQ2u1rSgwfhFE6KDrfen8Dr5sZAwWE2iOxo01VUh+d/fqWhu9r
UyfTuI5CX45ON+eedsBE3ATrqOK1a0KoN4mISp0LYUCSLfm6g7mQbhdXnH8BompYPySieVVRtk3+fhHxbICk8+xzfTGXYgZY
Nz/R01vSVLRPJI4ClZsW7ZkBYBByszhmmIN2qG3OWuW30b0QZQ1bBOdB/zsW3x9G/aXF/7kUd/ppTlVzUBHtyDtyKARKdH3V
VaRxQOV+Z5QZL4eHsmseypPsIVEfCZxPZSvPGtl/e1VXrIxeEFZoqjBXXVrjDNEesWWjx1dLs2/Hn5cR1DhDdWWOOKw8oBGR
kbkUZZm+DDfcCAe3YzdXQJcPKnzkM/N3linAtL/hCbgDtsH9Mm8vHQf8kE5MJTNgefA2qZtlJ/LffjyrJ2PRFjf0bb17+YQA
xi/ReCkAobkz6IuE0QJN2DEqhIPWrRpVPAJHcdKizcDJqwovHRVg2jf4iBSWatZhN28xHYevJhWFJBh9rHGm2hhmLUzuiW94
6b9S7YHQjODV740bJkPnD6mby/CNqFgJAYRPMay8Yr/t2y64unhf2jXiLP/jYwR8mCuYXISeTLyoE2hSOq4QxhZeBQi4F5ok
SIPUE700VCP466SkOIfGl8ujogfhI7Yg5wP+iIRvOVURgw3Sy3kvVf5vn83GNoC/KN/bCThCzu088/AM0PRxi/UkbFBR8uLg
FMOmBG37Ezlv8TcLtCqDpMc3StXGpxcuGjI2jT6PzF/4gMqM1RTVj4mkEJh5H5KkmofGYlSpyh+Ac1tu051HRTwitSF4+FHf
uJ8I+WCkypnkDnHfrM0aDnDFEVZRNUQjWxHDhXESldgjwac8CZ2p2qrx7KF+SDyZxvT34pHFnge8KX8KUuoM5OXU2WgfNMQK
bVkVSfjpYlBiQRPs7chTF+NVnnGdX7pbQEZ+xiEA7/tR892wDpTqMb2sMpRe87JP0wa4pEBRnfx2P4kL1Tyhz1A4ed01dQ7B
FU1whA0xIc3aBpLt6HY9eyUluxDy9QEAAAAAAAAAAgAAAAAAAABgBQAAAAAAAI4EAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
AAB7gwsvQ09PTFBBQ0s=
"""
)


def fetch_from(blob: bytes):  # type: ignore[no-untyped-def]
    return lambda offset, length: [blob[offset : offset + length]]


def test_v1_segment_still_reads() -> None:
    assert (
        b"".join(
            unseal(
                io.BytesIO(SEGMENT_V1),
                [IDENTITY],
                expected_header_mac=HEADER_MAC,
                verify_digests=True,
            )
        )
        == PLAINTEXT
    )
    fetch = fetch_from(SEGMENT_V1)
    assert read_metadata(fetch, len(SEGMENT_V1), [IDENTITY]) == SegmentMetadata(
        "fixture-org",
        "fixture-bucket",
        "dir/object.txt",
        content_type="text/plain",
        mtime=1700000000.5,
    )
    info = inspect_segment(fetch, len(SEGMENT_V1), [IDENTITY])
    assert info.header_mac == HEADER_MAC and info.plain_size == len(PLAINTEXT)
    got = unseal_range(
        31,
        70,
        age_header=info.age_header,
        payload_offset=info.payload_offset,
        seek_table=info.seek_table,
        fetch=fetch,
        identities=[IDENTITY],
    )
    assert b"".join(got) == PLAINTEXT[31:70]


def test_v1_container_still_reads() -> None:
    reader = ContainerReader(
        fetch_from(CONTAINER_V1), len(CONTAINER_V1), [IDENTITY], expected_index_mac=INDEX_MAC
    )
    assert [m.metadata.key for m in reader.members] == ["dir/object.txt", "big.bin"]
    (obj,) = reader.find("fixture-bucket", "dir/object.txt")
    assert b"".join(reader.read(obj)) == PLAINTEXT and obj.header_mac == HEADER_MAC
    (part,) = reader.find("fixture-bucket", "big.bin")
    assert (part.metadata.part_number, part.metadata.upload_id) == (1, "upload-1")
    assert b"".join(reader.read(part, 5)) == b"one"
