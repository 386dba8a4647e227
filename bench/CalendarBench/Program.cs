// Times CalendarSpec (parse + next elapse) in process, for comparison with one `systemd-analyze
// calendar` process per expression (what the Backups module ran on the plan path). Not a test.
//   calendar-bench loop [TZ]        per-expression cost, steady state
//   calendar-bench once EXPR [TZ]   one parse + next elapse in a fresh process (for hyperfine)
using System.Diagnostics;
using System.Globalization;
using PgState.Engine.Calendar;

string[] expressions =
[
    "*-*-* 02:30:00", "Mon..Fri *-*-* 03:00", "weekly", "Sat,Sun 01:00", "*-*-1/2 4:00:00", "2026-11-* 02:00 Europe/Paris",
    "hourly", "*:0/15", "daily", "monthly", "*-*-1,15 02:00", "*-02~01 23:00", "Mon *-05~07/1", "*:*:0/0.25", "every day",
];
var mode = args.Length > 0 ? args[0] : "loop";
var tz = mode == "once" ? (args.Length > 2 ? args[2] : null) : (args.Length > 1 ? args[1] : null);
var local = CalendarTimeZone.FromTzVariable(tz);
var now = DateTimeOffset.UtcNow;

if (mode == "once")
{
    if (!CalendarSpec.TryParse(args[1], local, out var spec, out string? error))
    {
        Console.Error.WriteLine(error);
        return 1;
    }
    Console.WriteLine($"Normalized form: {spec.Normalized}");
    Console.WriteLine($"    Next elapse: {spec.NextElapse(now)?.ToString("ddd yyyy-MM-dd HH:mm:ss zzz", CultureInfo.InvariantCulture) ?? "never"}");
    return 0;
}

static double Measure(Action action, int iterations)
{
    for (var i = 0; i < Math.Min(iterations, 200); i++)
    {
        action();
    }
    var sw = Stopwatch.StartNew();
    for (var i = 0; i < iterations; i++)
    {
        action();
    }
    return sw.Elapsed.TotalMicroseconds / iterations;
}

var first = Stopwatch.StartNew();
CalendarSpec.TryParse("2026-11-* 02:00 Europe/Paris", local, out var cold, out string? _);
cold!.NextElapse(now);
Console.WriteLine($"first expression in this process (zone files read, code cold): {first.Elapsed.TotalMicroseconds:0} µs");
Console.WriteLine($"{"expression",-32} {"parse µs",9} {"next µs",9} {"both µs",9}  normalized / next elapse");
double total = 0;
foreach (var text in expressions)
{
    var parse = Measure(() => CalendarSpec.TryParse(text, local, out _, out string? _), 20_000);
    var ok = CalendarSpec.TryParse(text, local, out var spec, out string? error);
    var next = ok ? Measure(() => spec!.NextElapse(now), 20_000) : 0;
    var both = Measure(() =>
    {
        if (CalendarSpec.TryParse(text, local, out var s, out string? _))
        {
            s.NextElapse(now);
        }
    }, 20_000);
    total += both;
    var what = ok ? $"{spec!.Normalized} / {spec.NextElapse(now)?.ToString("yyyy-MM-dd HH:mm:ss zzz", CultureInfo.InvariantCulture) ?? "never"}" : error;
    Console.WriteLine($"{text,-32} {parse,9:0.0} {next,9:0.0} {both,9:0.0}  {what}");
}
Console.WriteLine($"mean parse + next elapse: {total / expressions.Length:0.0} µs per expression (TZ={tz ?? "unset: /etc/localtime"})");
return 0;
