// Progressive enhancement only: every form works without this file.
document.addEventListener('click', async (ev) => {
  const b = ev.target.closest('button.copy');
  if (!b) return;
  const text = b.dataset.copy || '';
  try {
    await navigator.clipboard.writeText(text);
  } catch (_) {
    // Older webviews: copy through a temporary selection.
    const t = document.createElement('textarea');
    t.value = text; t.setAttribute('readonly', ''); t.style.position = 'fixed'; t.style.opacity = '0';
    document.body.appendChild(t); t.select(); document.execCommand('copy'); t.remove();
  }
  b.classList.add('copied');
  const old = b.textContent; b.textContent = '✓';
  setTimeout(() => { b.textContent = old; b.classList.remove('copied'); }, 1500);
});
document.addEventListener('submit', (ev) => {
  const f = ev.target;
  if (f.dataset.confirm && !window.confirm(f.dataset.confirm)) ev.preventDefault();
});
document.addEventListener('change', (ev) => {
  const input = ev.target;
  if (input.type === 'file' && input.dataset.fills && input.files.length) {
    const target = document.getElementById(input.dataset.fills);
    if (target) target.value = input.files[0].name;
  }
});
// A sync run in progress (sync_run.html): poll its progress until it finishes.
(function () {
  const box = document.getElementById('progress');
  if (!box || !box.dataset.run) return;
  const bar = document.getElementById('bar'), phase = document.getElementById('phase'), note = document.getElementById('wait-note');
  const overall = document.getElementById('overall'), left = document.getElementById('left');
  async function poll() {
    try {
      const r = await fetch('/console/sync/runs/' + encodeURIComponent(box.dataset.run) + '/progress', {credentials: 'same-origin'});
      const p = await r.json();
      if (p.finished) { location.reload(); return; }
      // One bar for the whole run; the phase and its own count beside it.
      bar.value = p.percent; phase.textContent = (p.phase_label || p.phase) + ' ' + p.done + '/' + p.total;
      if (overall) overall.textContent = p.percent + '%';
      if (left) left.textContent = p.left ? '· ' + p.left : '';
      // A wait for WeCom's rate limit, e.g. "waiting 38 s for WeCom's rate limit".
      if (note) { note.hidden = !p.note; note.textContent = p.note || ''; }
    } catch (_) {}
    setTimeout(poll, 500);
  }
  setTimeout(poll, 500);
})();
// App icon upload (app_edit.html): the chosen file travels base64 in the CSRF-checked form.
document.addEventListener('change', (ev) => {
  const input = ev.target;
  if (input.type !== 'file' || !('iconFile' in input.dataset) || !input.files.length) return;
  const form = input.closest('form');
  const reader = new FileReader();
  reader.onload = () => { form.elements.data.value = String(reader.result); };
  reader.readAsDataURL(input.files[0]);
});

// Users page: the header checkbox ticks or clears every row on the page.
document.querySelectorAll('[data-select-all]').forEach((all) => {
  all.addEventListener('change', () => {
    all.closest('table').querySelectorAll('tbody input[type=checkbox]').forEach((box) => {
      box.checked = all.checked;
    });
  });
});
// The language switch keeps the page's place: its filter, its pager, the sign-in's `next`
// (the links alone, without this, carry only `?lang=`).
for (const a of document.querySelectorAll('a[href^="?lang="]')) {
  const u = new URL(location.href);
  u.searchParams.set('lang', new URLSearchParams(a.getAttribute('href').slice(1)).get('lang'));
  a.href = u.pathname + u.search;
}
