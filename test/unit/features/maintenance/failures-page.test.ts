import { failuresPage } from '../../../../features/maintenance/failure-routes';

describe('the failure store page', () => {
  it('escapes every key and reason, so a key cannot inject markup into the dashboard', () => {
    const html = failuresPage({
      count: 1,
      byClass: { not_json: 1 },
      records: [
        {
          db: 0,
          key: '<script>alert(1)</script>',
          index: 'redis',
          reasonClass: 'not_json',
          attempts: 2,
          firstSeen: 't0',
          lastSeen: 't1',
          reason: 'value is "<b>" & more',
        },
      ],
    });
    expect(html).not.toContain('<script>');
    expect(html).toContain('<td>&#60;script&#62;alert(1)&#60;/script&#62;</td>');
    expect(html).toContain('<td>value is &#34;&#60;b&#62;&#34; &#38; more</td>');
    expect(html).toContain('Refused keys: 1');
    expect(html).toContain('not_json 1');
  });
});
