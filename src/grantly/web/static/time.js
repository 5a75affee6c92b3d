// <time datetime="2026-12-03T09:15:02Z" data-local>: shown in the viewer's own time zone and
// format, the UTC text the server wrote kept as its tooltip. No inline script (strict CSP).
{
  const format = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
  for (const time of document.querySelectorAll("time[data-local][datetime]")) {
    const moment = new Date(time.getAttribute("datetime"));
    if (Number.isNaN(moment.getTime())) continue;
    time.title = time.textContent;
    time.textContent = format.format(moment);
  }
}
