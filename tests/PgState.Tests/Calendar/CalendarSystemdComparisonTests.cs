using System.Globalization;
using Xunit.Abstractions;

namespace PgState.Tests.Calendar;

/// <summary>
/// CalendarSpec against the real <c>systemd-analyze calendar</c> (Debian 12: systemd 252), which needs
/// no running systemd: validity, normalized form and the next elapses of every corpus expression, with
/// the same TZ and --base-time on both sides.
/// </summary>
public class CalendarSystemdComparisonTests(ITestOutputHelper output)
{
    private const int Iterations = 5;

    private static DateTimeOffset At(string instant) => DateTimeOffset.Parse(instant, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);

    [Fact]
    public async Task Every_corpus_expression_gets_systemds_answers_in_a_fixed_zone()
    {
        // Europe/Paris: local abbreviations (CET, CEST), both DST changes of 2026 within the elapses.
        var report = await SystemdAnalyzeComparison.RunAsync(
            [":Europe/Paris"], [At("2026-03-28T12:34:56.789Z"), At("2026-10-24T21:00:00Z")], Iterations, CalendarCorpus.Expressions);
        Verify(report, CalendarCorpus.Expressions.Length * 2);
    }

    [Fact]
    public async Task Time_dependent_expressions_get_systemds_answers_in_other_zones()
    {
        // The expressions whose answers depend on the local zone (no zone of their own), in zones with
        // other rules: none (UTC), US rules in spring and autumn, a 30-minute southern-hemisphere DST,
        // a TZ string with Europe/Dublin's negative DST, and zones whose rules changed.
        var local = CalendarCorpus.Expressions.Where(e => !HasOwnZone(e)).ToList();
        var cases = new (string Tz, string Base)[]
        {
            (":UTC", "2027-02-27T23:59:59Z"),
            (":America/New_York", "2026-03-07T12:00:00Z"),
            (":America/New_York", "2026-10-31T18:00:00Z"),
            (":Australia/Lord_Howe", "2026-04-03T10:00:00Z"),
            (":Australia/Lord_Howe", "2026-10-02T10:00:00Z"),
            ("IST-1GMT-0,M10.5.0/1,M3.5.0/1", "2026-03-28T12:00:00Z"),
            // Past rule changes: a forced "-03" that makes systemd give up, a whole day skipped (Samoa, 2011-12-30).
            (":America/Santiago", "2011-05-07T15:12:40Z"),
            (":America/Sao_Paulo", "2012-02-25T03:42:22Z"),
            (":Pacific/Apia", "2011-12-28T00:00:00Z"),
        };
        var total = new SystemdAnalyzeComparison.Report();
        foreach (var (tz, baseTime) in cases)
        {
            var report = await SystemdAnalyzeComparison.RunAsync([tz], [At(baseTime)], Iterations, local);
            total.Cases += report.Cases;
            total.ValidAgree += report.ValidAgree;
            total.BothValid += report.BothValid;
            total.NormalizedAgree += report.NormalizedAgree;
            total.ElapsesAgree += report.ElapsesAgree;
            total.Elapses += report.Elapses;
            total.Never += report.Never;
            total.SearchFailed += report.SearchFailed;
            total.Mismatches.AddRange(report.Mismatches);
        }
        Verify(total, local.Count * cases.Length);
    }

    private static bool HasOwnZone(string expression)
    {
        var last = expression[(expression.LastIndexOf(' ') + 1)..];
        return last.Contains('/', StringComparison.Ordinal) && last.Any(char.IsAsciiLetter) && !last.Contains(':', StringComparison.Ordinal);
    }

    private void Verify(SystemdAnalyzeComparison.Report report, int expectedCases)
    {
        var refused = report.Cases - report.ValidAgree - report.Mismatches.Count;
        output.WriteLine($"{report.Cases} cases: valid/invalid agree {report.ValidAgree}/{report.Cases} ({refused} refused on purpose: control characters), "
            + $"normalized form agrees {report.NormalizedAgree}/{report.BothValid}, elapses agree {report.ElapsesAgree}/{report.BothValid} ({report.Elapses} elapses compared, "
            + $"{report.Never} \"never\", {report.SearchFailed} searches that systemd gives up)");
        Assert.Equal(expectedCases, report.Cases);
        Assert.True(report.Elapses > report.Cases, "the comparison compared (almost) no elapses");
        Assert.True(report.Mismatches.Count == 0, string.Join('\n', report.Mismatches.Take(40)));
    }
}
