using System.Diagnostics;

namespace PgState.Engine.Host;

/// <summary>Phase timings on stderr when PGSTATE_TIMINGS=1: how the benchmark's figures are explained.</summary>
public static class Timings
{
    private static readonly bool Enabled = Environment.GetEnvironmentVariable("PGSTATE_TIMINGS") == "1";
    private static readonly Stopwatch Clock = Stopwatch.StartNew();

    public static void Mark(string phase)
    {
        if (Enabled)
        {
            Console.Error.WriteLine($"[timing] {Clock.Elapsed.TotalMilliseconds,7:0.0} ms  {phase}  (since process start {(DateTime.Now - Process.GetCurrentProcess().StartTime).TotalMilliseconds:0} ms)");
        }
    }
}
