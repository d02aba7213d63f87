// Markdown to safe HTML, for the widget (bundled into /widget.js) and the operator's page: marked renders,
// DOMPurify keeps text formatting, lists, code, tables and links, nothing else (no forms, styles, ids or
// images: an answer a prompt injection shaped must not be able to dress up as the page), and links open in
// a new tab without the page's window or referrer. Needs the globals (or bundle locals) marked and DOMPurify.
"use strict";

const MARKDOWN_PURIFY = {
  ALLOWED_TAGS: ["a", "b", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i",
    "li", "ol", "p", "pre", "s", "strong", "table", "tbody", "td", "th", "thead", "tr", "ul"],
  ALLOWED_ATTR: ["href", "title"],
  ALLOW_DATA_ATTR: false,
};

DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A") {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer nofollow");
  }
});

function renderMarkdown(text) {
  return DOMPurify.sanitize(marked.parse(text, { gfm: true, breaks: true }), MARKDOWN_PURIFY);
}
