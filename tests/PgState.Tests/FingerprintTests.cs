using System.Text.Json;
using PgState.Tests.Infrastructure;

namespace PgState.Tests;

/// <summary>A saved plan's fingerprints must mean the same in the process that applies it: computed in two processes, they agree.</summary>
[Collection(SharedClusterA.Name)]
public class FingerprintTests(ClusterFixture fixture) : IAsyncLifetime
{
    private readonly ScratchCluster _cluster = fixture.Cluster;
    private readonly TempDir _dir = new();

    public Task InitializeAsync() => fixture.BeginAsync(GetType());

    public Task DisposeAsync()
    {
        _dir.Dispose();
        return Task.CompletedTask;
    }

    [Fact]
    public async Task Fingerprints_computed_in_two_processes_are_equal()
    {
        var units = Path.Combine(_dir.Path, "units");
        Directory.CreateDirectory(units);
        File.WriteAllText(Path.Combine(units, "pgstate-backup-db-old.timer"), "# Written by pgstate for host db from manifest /x: schedule\n");
        var file = _dir.Write("f.yaml", _cluster.Manifest("db",
            $"  settings: {{archive_timeout: 3min}}\n  roles: [{{name: fp_role}}]\n  slots: [{{name: fp_slot}}]\n" +
            "  hba: {mode: managed-block, rules: [{type: local, database: all, user: all, method: trust}]}\n" +
            $"  backups: [{{name: nightly, schedule: \"*-*-* 02:00:00\", destination: {_dir.Path}/b}}]\n  backupScheduling: {{unitDirectory: {units}}}"));
        var first = await PgStateBinary.RunAsync(["plan", "--format", "json", file]);
        var second = await PgStateBinary.RunAsync(["plan", "--format", "json", file]);
        Assert.True(first.ExitCode == 2, first.StandardError);
        static IEnumerable<string> Fingerprints(string json)
        {
            using var doc = JsonDocument.Parse(json);
            var plan = doc.RootElement.GetProperty("plans")[0];
            yield return plan.GetProperty("fingerprint").GetString()!;
            foreach (var c in plan.GetProperty("changes").EnumerateArray())
            {
                yield return c.GetProperty("address").GetString() + " " + c.GetProperty("fingerprint").GetString();
            }
        }
        var a = Fingerprints(first.StandardOutput).ToList();
        Assert.True(a.Count > 6, first.StandardOutput);
        Assert.Equal(a, Fingerprints(second.StandardOutput));
        Assert.Contains(a, f => f.StartsWith("backups.old.timer ", StringComparison.Ordinal));
    }
}
