using PgState.Tests.Infrastructure;

namespace PgState.Tests.Hostile;

/// <summary>A test class on a shared cluster that leaves it as it found it: reset before and after, files in a temporary directory.</summary>
public abstract class ResetClusterTest(ClusterFixture fixture) : IAsyncLifetime
{
    protected ScratchCluster Cluster { get; } = fixture.Cluster;

    protected TempDir Dir { get; } = new();

    public async Task InitializeAsync()
    {
        await fixture.BeginAsync(GetType());
        await Cluster.ResetAsync();
    }

    public async Task DisposeAsync()
    {
        await Cluster.ResetAsync();
        Dir.Dispose();
    }
}
