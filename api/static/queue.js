// Keyboard shortcuts of the alert queue: / filter, j/k move, Enter opens (a file: the CSP allows no inline script).
(function () {
  var links = Array.prototype.slice.call(document.querySelectorAll('a.alert-link')), i = -1;
  document.addEventListener('keydown', function (e) {
    if (e.target.tagName === 'INPUT' || e.target.tagName === 'SELECT' || e.target.tagName === 'TEXTAREA') return;
    if (e.key === '/') { e.preventDefault(); document.getElementById('f-merchant').focus(); }
    if ((e.key === 'j' || e.key === 'k') && links.length) {
      i = Math.max(0, Math.min(links.length - 1, i + (e.key === 'j' ? 1 : -1))); links[i].focus();
    }
  });
})();
