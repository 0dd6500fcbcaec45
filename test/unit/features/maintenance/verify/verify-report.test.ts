import { reportKeys, type VerifyReport } from '../../../../../features/maintenance/verify';

describe('reportKeys', () => {
  const report: VerifyReport = {
    checked: 9,
    missing: ['user:1'],
    stale: ['a:b:c'],
    extra: ['user:1', 'gone'],
    refused: [],
    why: {},
  };

  it('groups the named keys of a single database, each once', () => {
    expect(reportKeys(report, [3])).toEqual(new Map([[3, ['user:1', 'a:b:c', 'gone']]]));
  });

  it('splits `db:key` names when several databases are synced, keeping colons inside keys', () => {
    const multi: VerifyReport = {
      checked: 3,
      missing: ['0:user:1'],
      stale: ['1:a:b:c'],
      extra: ['1:gone'],
      refused: [],
      why: {},
    };
    expect(reportKeys(multi, [0, 1])).toEqual(
      new Map([
        [0, ['user:1']],
        [1, ['a:b:c', 'gone']],
      ]),
    );
  });
});
