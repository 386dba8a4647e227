using PgState.Modules.Archiving;
using PgState.Tests.Infrastructure;

namespace PgState.Tests.Archiving;

/// <summary>The copy method's archive_command, run by the real archiver and by hand the way the server runs it.</summary>
[Collection(SharedClusterA.Name)]
public class CopyArchiveTests(ClusterFixture fixture) : IAsyncLifetime
{
    private readonly ScratchCluster _cluster = fixture.Cluster;

    public Task InitializeAsync() => fixture.BeginAsync(GetType());

    Task IAsyncLifetime.DisposeAsync() => Task.CompletedTask;

    [Fact]
    public async Task Switched_segment_lands_in_destination_and_the_command_never_overwrites()
    {
        // A destination with a space and a quote, to prove the quoting.
        var destination = Path.Combine(_cluster.Root, "arch ive's");
        Directory.CreateDirectory(destination);
        await _cluster.ChownToServerAsync(destination);
        using var dir = new TempDir();
        var file = dir.Write("copy.yaml", _cluster.Manifest("db",
            $"  archiving:\n    mode: \"on\"\n    method: copy\n    destination: \"{destination}\"", "allowed"));
        var apply = await CliRunner.RunAsync("apply", "--auto-approve", file);
        Assert.True(apply.ExitCode == 0, apply.ToString());

        await _cluster.ExecAsync("create table if not exists t(x int); insert into t values (1)");
        var segment = await _cluster.ScalarAsync<string>("select pg_walfile_name(pg_switch_wal())");
        var archived = Path.Combine(destination, segment);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!File.Exists(archived) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
        }
        Assert.True(File.Exists(archived), $"segment {segment} not archived to {destination}");
        Assert.Equal(16 * 1024 * 1024, new FileInfo(archived).Length);
        Assert.Empty(Directory.GetFiles(destination, ".*.tmp"));
        Assert.Equal(0L, await _cluster.ScalarAsync<long>("select failed_count from pg_stat_archiver"));

        // Run the command as the server does: sh -c, in the data directory, %p and %f expanded.
        var command = ArchiveCommands.Copy(destination);
        async Task<int> ArchiveAsync(string source, string name)
        {
            var expanded = command.Replace("%p", source).Replace("%f", name).Replace("%%", "%");
            var result = await _cluster.AsServerUserAsync("sh", ["-c", expanded], check: false, workingDirectory: _cluster.DataDirectory);
            return result.ExitCode;
        }

        // The same segment again: already there and identical → success, file untouched.
        var before = File.GetLastWriteTimeUtc(archived);
        Assert.Equal(0, await ArchiveAsync($"pg_wal/{segment}", segment));
        Assert.Equal(before, File.GetLastWriteTimeUtc(archived));

        // A different file under the same name → failure, archived copy unchanged.
        var impostor = Path.Combine(_cluster.Root, "impostor");
        await File.WriteAllBytesAsync(impostor, new byte[16 * 1024 * 1024]);
        await _cluster.ChownToServerAsync(impostor);
        var original = await File.ReadAllBytesAsync(archived);
        Assert.NotEqual(0, await ArchiveAsync(impostor, segment));
        Assert.Equal(original, await File.ReadAllBytesAsync(archived));

        // A new name → copied through a temporary file, then renamed.
        Assert.Equal(0, await ArchiveAsync(impostor, "000000010000000000000099"));
        Assert.True(File.Exists(Path.Combine(destination, "000000010000000000000099")));
        Assert.Empty(Directory.GetFiles(destination, ".*.tmp"));
    }
}
