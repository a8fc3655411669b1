"""Byte-reproducible binary outputs: the same input gives the same bytes on every run.

A run killed and resumed must end with exactly the outputs of an uninterrupted
run, and two analysts comparing their ``outputs/`` folders should see a
difference only where the data differ. XLSX files carry two clocks that would
break that: the workbook's created/modified properties (openpyxl stamps "now"
on save) and every zip member's date. Both are fixed here.
"""

from __future__ import annotations

import io
import zipfile
from datetime import datetime

from openpyxl import Workbook
from openpyxl.writer.excel import ExcelWriter

FIXED_TIME = datetime(2000, 1, 1)  # naive UTC, as openpyxl stores document properties
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip member can carry


class _FixedDateZip(zipfile.ZipFile):
    """A zip whose members all carry :data:`ZIP_DATE` (openpyxl writes members by name, dated now)."""

    def writestr(self, zinfo_or_arcname, data, compress_type=None, compresslevel=None):  # type: ignore[no-untyped-def, override]
        if not isinstance(zinfo_or_arcname, zipfile.ZipInfo):
            zinfo_or_arcname = zipfile.ZipInfo(zinfo_or_arcname, date_time=ZIP_DATE)
            zinfo_or_arcname.compress_type = self.compression
        else:
            zinfo_or_arcname.date_time = ZIP_DATE
        super().writestr(zinfo_or_arcname, data, compress_type, compresslevel)

    def write(self, filename, arcname=None, compress_type=None, compresslevel=None):  # type: ignore[no-untyped-def, override]
        """Worksheets come from temporary files: stored with the fixed date, like every member."""
        with open(filename, "rb") as handle:
            self.writestr(str(arcname or filename), handle.read(), compress_type, compresslevel)


def xlsx_bytes(book: Workbook) -> bytes:
    """The workbook as XLSX bytes with fixed document times and zip dates.

    Goes through openpyxl's own ``ExcelWriter`` (what ``Workbook.save`` uses) minus the line
    of ``save_workbook`` that stamps the modification time.
    """
    book.properties.created = FIXED_TIME
    book.properties.modified = FIXED_TIME
    buffer = io.BytesIO()
    with _FixedDateZip(buffer, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        ExcelWriter(book, archive).save()
    return buffer.getvalue()
