using System.Diagnostics;

namespace PgState.Engine.Host;

/// <summary>Phase timings (PGSTATE_TIMINGS=1): how the benchmark's figures are explained. The CLI sets the sink.</summary>
public static class Timings
{
    private static readonly Stopwatch Clock = Stopwatch.StartNew();

    /// <summary>Where marks go (stderr in the CLI); null: timings are off.</summary>
    public static Action<string>? Sink { get; set; }

    public static void Mark(string phase)
    {
        if (Sink is { } sink)
        {
            var sinceStart = (DateTime.Now - Process.GetCurrentProcess().StartTime).TotalMilliseconds;
            sink($"[timing] {Clock.Elapsed.TotalMilliseconds,7:0.0} ms  {phase}  (since process start {sinceStart:0} ms)");
        }
    }
}
