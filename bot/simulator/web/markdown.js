/* WeCom's markdown subset (PROTOCOL.md §4.6), rendered as the WeCom client shows it:
   headings, **bold**, [text](url), `code`, > quote, <font color="info|comment|warning">.
   Everything else is text: the input is escaped first, so nothing else becomes HTML. */
"use strict";

function escapeHtml(text) {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;");
}

function inlineMarkdown(html) {
  html = html.replace(/&lt;font color=(?:&quot;)?(info|comment|warning)(?:&quot;)?&gt;([\s\S]*?)&lt;\/font&gt;/g,
    (_m, color, inner) => `<span class="font-${color}">${inner}</span>`);
  html = html.replace(/`([^`\n]+)`/g, "<code>$1</code>");
  html = html.replace(/\*\*([^*\n]+)\*\*/g, "<strong>$1</strong>");
  html = html.replace(/\[([^\]\n]*)\]\((https?:\/\/[^)\s]+)\)/g,
    '<a href="$2" target="_blank" rel="noopener noreferrer">$1</a>');
  return html;
}

function renderMarkdown(text) {
  // A colour may span lines: close it at each line end and reopen it on the next line.
  const open = /&lt;font color=(?:&quot;)?(info|comment|warning)(?:&quot;)?&gt;/g;
  let carry = null;
  const lines = escapeHtml(text).split("\n").map((raw) => {
    let line = carry ? `&lt;font color=&quot;${carry}&quot;&gt;${raw}` : raw;
    const opens = [...line.matchAll(open)];
    const closes = (line.match(/&lt;\/font&gt;/g) || []).length;
    carry = opens.length > closes ? opens[opens.length - 1][1] : null;
    if (carry) line += "&lt;/font&gt;";
    return line;
  });
  return lines.map((line) => {
    const heading = /^(#{1,6}) (.*)$/.exec(line);
    if (heading) {
      return `<div class="md-h md-h${heading[1].length}">${inlineMarkdown(heading[2])}</div>`;
    }
    const quote = /^&gt; ?(.*)$/.exec(line);
    if (quote) {
      return `<div class="md-quote">${inlineMarkdown(quote[1])}</div>`;
    }
    return `<div class="md-line">${inlineMarkdown(line) || "&nbsp;"}</div>`;
  }).join("");
}

if (typeof module !== "undefined") {
  module.exports = { renderMarkdown, escapeHtml };
}
