"""Documents of every kind built in code, and helpers to read their stored chunks."""

from __future__ import annotations

import io
from typing import Any

from tests.document_helpers import chunk_rows
from tests.graphql_client import GraphQLClient

SEARCH = """
query Search($modelId: UUID!, $query: String!) {
  search(modelId: $modelId, query: $query, k: 5) {
    __typename
    ... on SearchResults { passages { documentId text pageStart rowStart rowEnd } }
  }
}
"""


# Chunks with their typed location: tests/document_helpers.py selects it for every test.
located_chunks = chunk_rows


async def search_texts(client: GraphQLClient, model_id: Any, query: str) -> list[dict[str, Any]]:
    data = await client.execute(SEARCH, {"modelId": str(model_id), "query": query})
    assert data["search"]["__typename"] == "SearchResults", data
    return list(data["search"]["passages"])


def docx_bytes() -> bytes:
    import docx

    document = docx.Document()
    document.core_properties.title = "Staff handbook"
    document.add_heading("Benefits", level=1)
    document.add_paragraph("Everyone gets health cover from the first day of work.")
    document.add_heading("Leave", level=2)
    document.add_paragraph("Parental leave lasts twenty-six weeks at full pay for every parent.")
    document.add_paragraph("Unused holiday carries over", style="List Bullet")
    table = document.add_table(rows=1, cols=3)
    for cell, name in zip(table.rows[0].cells, ("Region", "Office", "Head count"), strict=True):
        cell.text = name
    for index in range(60):
        row = table.add_row().cells
        row[0].text, row[1].text, row[2].text = f"Region {index}", f"Zanzibar office {index}", str(index * 3)
    section = document.sections[0]
    section.header.paragraphs[0].text = "CONFIDENTIAL RUNNING HEADER"
    section.footer.paragraphs[0].text = "Footer of every page"
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def pptx_bytes() -> bytes:
    from pptx import Presentation
    from pptx.util import Inches

    presentation = Presentation()
    for number in range(1, 8):
        slide = presentation.slides.add_slide(presentation.slide_layouts[1])
        slide.shapes.title.text = f"Quarter review {number}"
        body = slide.placeholders[1].text_frame
        body.text = (
            "The aurora borealis campaign tripled sign-ups." if number == 7 else f"Ordinary slide {number}."
        )
        slide.notes_slide.notes_text_frame.text = f"Speaker notes for slide {number}: mention the llamas."
    slide = presentation.slides.add_slide(presentation.slide_layouts[5])
    slide.shapes.title.text = "Numbers"
    table = slide.shapes.add_table(3, 2, Inches(1), Inches(2), Inches(6), Inches(2)).table
    for row, values in enumerate((("Metric", "Value"), ("Churn", "4 percent"), ("Signups", "9000"))):
        for column, value in enumerate(values):
            table.cell(row, column).text = value
    buffer = io.BytesIO()
    presentation.save(buffer)
    return buffer.getvalue()


def xlsx_bytes(macro_enabled: bool = False) -> bytes:
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Q1"
    sheet.append(["Product", "Units", "Region"])
    for index in range(1, 11):
        sheet.append([f"Widget {index}", index * 10, "North"])
    q2 = workbook.create_sheet("Q2")
    q2.append(["Product", "Units", "Region"])
    for index in range(1, 41):
        q2.append([f"Gadget {index}", index, "Marrakesh" if index == 20 else "South"])
    q2.append(["Total", "=SUM(B2:B41)", ""])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def html_bytes(encoding: str = "utf-8") -> bytes:
    page = """<!DOCTYPE html><html><head><meta charset="{charset}"><title>Policies</title>
<style>body {{ color: red }}</style><script>var secretScriptToken = 1;</script></head>
<body><nav><a href="/">Home navigation link</a></nav>
<main><h1>Benefits</h1><p>Our benefits are generous.</p>
<h2>Leave</h2><p>Sabbatical leave of three months is granted after seven years — café included.</p>
</main><footer>Copyright footer text</footer></body></html>"""
    charset = "utf-16" if encoding.startswith("utf-16") else encoding
    return page.format(charset=charset).encode(encoding)


def text_image_png(lines: list[str], scale: int = 1) -> bytes:
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=28 * scale)
    image = Image.new("L", (1400 * scale, (80 + 60 * len(lines)) * scale), 255)
    draw = ImageDraw.Draw(image)
    for index, line in enumerate(lines):
        draw.text((40 * scale, (40 + 60 * index) * scale), line, fill=0, font=font)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def image_only_pdf_bytes(lines: list[str]) -> bytes:
    """A PDF whose only page is a picture of text (no text layer)."""
    from PIL import Image

    image = Image.open(io.BytesIO(text_image_png(lines))).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PDF", resolution=150)
    return buffer.getvalue()
