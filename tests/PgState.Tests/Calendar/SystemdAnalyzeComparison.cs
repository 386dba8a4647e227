using System.Globalization;
using PgState.Engine.Calendar;
using PgState.Engine.Host;

namespace PgState.Tests.Calendar;

/// <summary>What systemd-analyze calendar said about one expression, or what CalendarSpec says.</summary>
internal sealed record CalendarVerdict(bool Valid, string? Normalized, bool Never, bool SearchFailed, IReadOnlyList<string> Elapses)
{
    public string Describe() => !Valid ? "invalid"
        : $"\"{Normalized}\" " + (SearchFailed ? "search fails" : Never ? "never" : string.Join(" | ", Elapses));
}

/// <summary>
/// Runs the real <c>systemd-analyze calendar --iterations=N --base-time=@T</c> (one process per time
/// zone and base time, every expression as an argument) and compares each answer with
/// <see cref="CalendarSpec"/> evaluated in the same zone from the same base time: validity, normalized
/// form, and every elapse both in UTC and as local time with its abbreviation (to the second, which is
/// what systemd-analyze prints).
/// </summary>
internal static class SystemdAnalyzeComparison
{
    public sealed class Report
    {
        public int Cases;
        public int ValidAgree;
        public int BothValid;
        public int NormalizedAgree;
        public int ElapsesAgree;
        public int Elapses;
        public int Never;
        public int SearchFailed;
        public readonly List<string> Mismatches = [];
    }

    public static async Task<Report> RunAsync(IReadOnlyList<string> timeZones, IReadOnlyList<DateTimeOffset> bases, int iterations, IReadOnlyList<string> expressions)
    {
        var report = new Report();
        foreach (var tz in timeZones)
        {
            var local = CalendarTimeZone.FromTzVariable(tz);
            foreach (var baseTime in bases)
            {
                var systemd = await SystemdAsync(tz, baseTime, iterations, expressions);
                for (var i = 0; i < expressions.Count; i++)
                {
                    var ours = Ours(expressions[i], local, baseTime, iterations);
                    var theirs = systemd[i];
                    report.Cases++;
                    report.Elapses += theirs.Elapses.Count;
                    report.Never += theirs.Never ? 1 : 0;
                    report.SearchFailed += theirs.SearchFailed ? 1 : 0;
                    var agree = true;
                    if (ours.Valid == theirs.Valid)
                    {
                        report.ValidAgree++;
                    }
                    else if (!(CalendarCorpus.RefusedOnPurpose.Contains(expressions[i]) && theirs.Valid && !ours.Valid))
                    {
                        agree = false;
                    }
                    if (ours.Valid && theirs.Valid)
                    {
                        report.BothValid++;
                        if (ours.Normalized == theirs.Normalized)
                        {
                            report.NormalizedAgree++;
                        }
                        else
                        {
                            agree = false;
                        }
                        if (ours.Never == theirs.Never && ours.SearchFailed == theirs.SearchFailed && ours.Elapses.SequenceEqual(theirs.Elapses))
                        {
                            report.ElapsesAgree++;
                        }
                        else
                        {
                            agree = false;
                        }
                    }
                    if (!agree)
                    {
                        report.Mismatches.Add($"TZ={tz} base={baseTime:O} \"{expressions[i]}\"\n    systemd: {theirs.Describe()}\n    ours:    {ours.Describe()}");
                    }
                }
            }
        }
        return report;
    }

    /// <summary>CalendarSpec's answer, shaped as systemd-analyze prints it.</summary>
    public static CalendarVerdict Ours(string expression, CalendarTimeZone local, DateTimeOffset baseTime, int iterations)
    {
        if (!CalendarSpec.TryParse(expression, local, out var spec, out _))
        {
            return new CalendarVerdict(false, null, false, false, []);
        }
        var elapses = new List<string>();
        var after = baseTime;
        for (var i = 0; i < iterations; i++)
        {
            var next = spec.FindNextElapse(after);
            if (next.Status == CalendarElapseStatus.Never)
            {
                return new CalendarVerdict(true, spec.Normalized, i == 0, false, elapses);
            }
            if (next.Time is not { } time)
            {
                // systemd-analyze fails the whole expression and prints none of it.
                return new CalendarVerdict(true, spec.Normalized, false, true, []);
            }
            elapses.Add(Render(time, local));
            after = time;
        }
        return new CalendarVerdict(true, spec.Normalized, false, false, elapses);
    }

    /// <summary>"Sun 2026-03-29 03:00:00 CEST = Sun 2026-03-29 01:00:00 UTC".</summary>
    private static string Render(DateTimeOffset instant, CalendarTimeZone local)
    {
        var utc = instant.UtcDateTime.ToString("ddd yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) + " UTC";
        var wall = instant.ToOffset(local.OffsetAt(instant)).DateTime.ToString("ddd yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) + " " + local.AbbreviationAt(instant);
        return wall + " = " + utc;
    }

    private static async Task<IReadOnlyList<CalendarVerdict>> SystemdAsync(string tz, DateTimeOffset baseTime, int iterations, IReadOnlyList<string> expressions)
    {
        var usec = (baseTime.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) / 10;
        var baseArgument = $"--base-time=@{usec / 1_000_000}.{usec % 1_000_000:D6}";
        var result = await ProcessRunner.Default.RunAsync("systemd-analyze", ["calendar", $"--iterations={iterations}", baseArgument, "--", .. expressions],
            timeout: TimeSpan.FromMinutes(2), check: false, environment: new Dictionary<string, string?> { ["TZ"] = tz, ["SYSTEMD_COLORS"] = "0", ["LC_ALL"] = "C" });

        // One table per expression, separated by one empty line; an expression that fails prints nothing.
        var blocks = new List<List<string>> { new() };
        foreach (var line in result.StandardOutput.Split('\n'))
        {
            if (line.Length == 0)
            {
                blocks.Add([]);
            }
            else
            {
                blocks[^1].Add(line);
            }
        }
        if (blocks.Count < expressions.Count)
        {
            throw new InvalidOperationException($"systemd-analyze printed {blocks.Count} tables for {expressions.Count} expressions:\n{result.StandardOutput}\n{result.StandardError}");
        }
        var verdicts = new List<CalendarVerdict>();
        for (var i = 0; i < expressions.Count; i++)
        {
            var lines = blocks[i].Select(l => (Label: l[..l.IndexOf(": ", StringComparison.Ordinal)].Trim(), Value: l[(l.IndexOf(": ", StringComparison.Ordinal) + 2)..])).ToList();
            var normalized = lines.Where(l => l.Label == "Normalized form").Select(l => l.Value).FirstOrDefault();
            if (normalized is null)
            {
                var searchFailed = result.StandardError.Contains($"Failed to determine next elapse for '{expressions[i]}'", StringComparison.Ordinal);
                if (searchFailed)
                {
                    // The whole table is dropped; the normal form is systemd's too, so take the parser's.
                    CalendarSpec.TryParse(expressions[i], CalendarTimeZone.FromTzVariable(tz), out var spec, out _);
                    verdicts.Add(new CalendarVerdict(true, spec?.Normalized, false, true, []));
                }
                else
                {
                    verdicts.Add(new CalendarVerdict(false, null, false, false, []));
                }
                continue;
            }
            var elapses = new List<string>();
            var never = false;
            for (var j = 0; j < lines.Count; j++)
            {
                var (label, value) = lines[j];
                if (label == "Next elapse" && value == "never")
                {
                    never = true;
                }
                else if (label == "Next elapse" || label.StartsWith("Iter", StringComparison.Ordinal))
                {
                    var utc = j + 1 < lines.Count && lines[j + 1].Label == "(in UTC)" ? lines[j + 1].Value : value;
                    elapses.Add(value + " = " + utc);
                }
            }
            verdicts.Add(new CalendarVerdict(true, normalized, never, false, elapses));
        }
        return verdicts;
    }
}
