namespace PgState.Tests.Infrastructure;

/// <summary>
/// A PostgreSQL major as a type, so that a test class is written once and declared once per major:
/// an abstract class holds the tests and nests <c>Pg13</c> … <c>Pg18</c>, each with its own
/// <see cref="ClusterFixture{TMajor}"/>. Test names then carry the major (<c>HbaApplyTests+Pg17.…</c>),
/// which is how scripts/test.sh counts results per version. Each nested class is its own xunit
/// collection: the majors run side by side, at most maxParallelThreads at a time.
/// </summary>
public interface IServerMajor
{
    static abstract int Major { get; }
}

public sealed class Major13 : IServerMajor
{
    public static int Major => 13;
}

public sealed class Major14 : IServerMajor
{
    public static int Major => 14;
}

public sealed class Major15 : IServerMajor
{
    public static int Major => 15;
}

public sealed class Major16 : IServerMajor
{
    public static int Major => 16;
}

public sealed class Major17 : IServerMajor
{
    public static int Major => 17;
}

public sealed class Major18 : IServerMajor
{
    public static int Major => 18;
}

/// <summary>
/// One cluster of <typeparamref name="TMajor"/> per test class. When that major's server binaries
/// are missing, every test of the class fails with the reason (run scripts/fetch-postgres.sh): a
/// silently skipped major would hide exactly the breakage the matrix exists to find.
/// </summary>
public sealed class ClusterFixture<TMajor> : IAsyncLifetime
    where TMajor : IServerMajor
{
    public ScratchCluster Cluster { get; private set; } = null!;

    public async Task InitializeAsync() => Cluster = await ScratchCluster.StartAsync(TMajor.Major);

    public async Task DisposeAsync()
    {
        if (Cluster is not null)
        {
            await Cluster.DisposeAsync();
        }
    }
}
