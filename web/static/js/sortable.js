// Sorts a table's rows when a column heading's button is pressed; a second press reverses.
// Each row carries its sort values as data-* attributes (numbers sort as numbers, blanks last).
function sortBy(table, key, button) {
  const heading = button.closest('th');
  const descending = heading.getAttribute('aria-sort') === 'ascending';
  const attribute = `data-${key.replace(/_/g, '-')}`;
  const value = (row) => row.getAttribute(attribute) ?? '';
  const rows = [...table.tBodies[0].rows];
  rows.sort((a, b) => {
    const [x, y] = [value(a), value(b)];
    if (x === '' || y === '') return (x === '') - (y === '');
    const [nx, ny] = [Number(x), Number(y)];
    const order = Number.isNaN(nx) || Number.isNaN(ny) ? x.localeCompare(y) : nx - ny;
    return descending ? -order : order;
  });
  table.tBodies[0].append(...rows);
  for (const other of table.querySelectorAll('thead th')) other.removeAttribute('aria-sort');
  heading.setAttribute('aria-sort', descending ? 'descending' : 'ascending');
}

for (const table of document.querySelectorAll('table.sortable')) {
  for (const button of table.querySelectorAll('thead button[data-key]')) {
    button.addEventListener('click', () => sortBy(table, button.dataset.key, button));
  }
}
